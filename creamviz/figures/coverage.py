"""Figures of relative-position coverage and the Theorem B.1 audit (issue: coverage & theorem).

Data come from :mod:`creamviz.coverage` (curves, per-distance frequencies) and
:func:`creamviz.theorem.region_map`; the builders only arrange them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from creamviz.figures.style import TEMPLATE, method_color
from creamviz.theorem import RegionMap

__all__ = ["fig_region_map", "fig_coverage_curves", "fig_distance_frequency"]


def _check_mapping(name: str, data) -> dict[str, np.ndarray]:
    if not isinstance(data, Mapping) or not data:
        raise ValueError(f"{name} must be a non-empty mapping name -> 1-D array, got {type(data).__name__}")
    out = {}
    for key, values in data.items():
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name}[{key!r}] must be a non-empty 1-D array, got shape {arr.shape}")
        out[str(key)] = arr
    return out


def fig_region_map(region: RegionMap, *, title: str | None = None, deficit: bool = False) -> go.Figure:
    """``|D_r|`` over every middle placement (x: ``P_s``) and head length (y: ``L_h``).

    Left: heatmap of ``|D_r|`` (or, with ``deficit=True``, ``|D_r| - (W + 2N - 3)``, 0 at the
    bound); blank cells are infeasible placements. On top: open squares where the placement
    reaches the row's maximum (trace ``maximal``) and crosses where the reconstructed conditions
    hold (trace ``conditions hold``) — they coincide exactly when the theorem's "iff" holds.
    Right: per head length the true maximum, the upper bound ``W + 2N - 3`` and the paper's
    constant ``max(L_h - 1, P_e - P_s, L_t - 1) + 2N``.
    """
    if not isinstance(region, RegionMap):
        raise ValueError(f"region must be a creamviz.theorem.RegionMap, got {type(region).__name__}")
    fig = make_subplots(rows=1, cols=2, column_widths=[0.74, 0.26], horizontal_spacing=0.1, shared_yaxes=True,
                        subplot_titles=("|D_r| per middle placement", "maximum vs constants"))
    z = region.spans - region.upper_bounds[:, None] if deficit else region.spans
    fig.add_trace(go.Heatmap(x=region.mid_starts, y=region.head_lens, z=z, name="|D_r|", colorscale="Viridis",
                             colorbar={"title": "|D_r| − bound" if deficit else "|D_r|", "x": 0.69},
                             hovertemplate="P_s %{x}<br>L_h %{y}<br>%{z}<extra></extra>"), row=1, col=1)
    rows, cols = np.nonzero(region.is_max)
    fig.add_trace(go.Scatter(x=region.mid_starts[cols], y=region.head_lens[rows], mode="markers", name="maximal",
                             marker={"symbol": "square-open", "size": 10, "color": "black", "line": {"width": 2}}),
                  row=1, col=1)
    rows, cols = np.nonzero(region.conditions)
    fig.add_trace(go.Scatter(x=region.mid_starts[cols], y=region.head_lens[rows], mode="markers",
                             name="conditions hold", marker={"symbol": "x-thin", "size": 7, "color": "#d62728",
                                                             "line": {"width": 2, "color": "#d62728"}}),
                  row=1, col=1)
    row_max = np.nanmax(region.spans, axis=1)
    for name, values, dash in (("true max", row_max, "solid"), ("upper bound W+2N−3", region.upper_bounds, "dot"),
                               ("paper: max(L_h−1, P_e−P_s, L_t−1)+2N", region.paper_values, "dash")):
        fig.add_trace(go.Scatter(x=values, y=region.head_lens, name=name, mode="lines+markers",
                                 line={"dash": dash}), row=1, col=2)
    tails = "L_t = L_h" if np.array_equal(region.tail_lens, region.head_lens) else f"L_t = {int(region.tail_lens[0])}"
    fig.update_layout(template=TEMPLATE, legend={"orientation": "h", "y": -0.18},
                      title=title or f"Theorem B.1 region map (N = {region.train_len}, L = {region.target_len}, {tails})")
    fig.update_xaxes(title_text="P_s (middle start)", row=1, col=1)
    fig.update_xaxes(title_text="|D_r|", row=1, col=2)
    fig.update_yaxes(title_text="L_h (head length)", row=1, col=1)
    return fig


def fig_coverage_curves(curves: Mapping[str, np.ndarray], *, title: str | None = None,
                        log_x: bool = True) -> go.Figure:
    """Fraction of ``[0, L)`` covered by the union of ``D_r`` after 1 … n samples, one line per
    sampler (``curves``: name -> (n,) array from :func:`creamviz.coverage.coverage_curve`)."""
    curves = _check_mapping("curves", curves)
    fig = go.Figure()
    for i, (name, frac) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=np.arange(1, len(frac) + 1), y=frac, name=name, mode="lines",
                                 line={"color": method_color(name, i), "width": 2},
                                 hovertemplate="%{x} samples: %{y:.4f}<extra>" + name + "</extra>"))
    fig.update_layout(template=TEMPLATE, title=title or "Relative distances covered as samples accumulate",
                      xaxis_title="number of samples", yaxis_title="fraction of [0, L) covered",
                      legend_title="sampler")
    fig.update_xaxes(type="log" if log_x else "linear")
    fig.update_yaxes(range=[0, 1.02])
    return fig


def fig_distance_frequency(freqs: Mapping[str, np.ndarray], *, distances=None, title: str | None = None,
                           log_y: bool = True) -> go.Figure:
    """Per-distance coverage frequency: the fraction of samples whose ``D_r`` contains ``d``.

    ``freqs``: name -> (L,) array (e.g. :func:`creamviz.coverage.distance_frequency`, or
    binned with :func:`creamviz.coverage.bin_mean`, then pass the bin centres as ``distances``).
    ``log_y`` shows the rare long distances (zeros drop off a log axis).
    """
    freqs = _check_mapping("freqs", freqs)
    lengths = {len(v) for v in freqs.values()}
    if distances is None:
        if len(lengths) != 1:
            raise ValueError(f"freqs arrays must share one length when distances is None, got {sorted(lengths)}")
        distances = np.arange(lengths.pop())
    distances = np.asarray(distances)
    if distances.ndim != 1 or any(len(v) != len(distances) for v in freqs.values()):
        raise ValueError(f"distances must be 1-D with the length of every freqs array, got shape {distances.shape}")
    fig = go.Figure()
    trace = go.Scattergl if len(distances) > 20000 else go.Scatter
    for i, (name, frac) in enumerate(freqs.items()):
        fig.add_trace(trace(x=distances, y=frac, name=name, mode="lines",
                            line={"color": method_color(name, i), "width": 1.5}))
    fig.update_layout(template=TEMPLATE, title=title or "How often each relative distance is trained",
                      xaxis_title="relative distance d", yaxis_title="fraction of samples with d in D_r",
                      legend_title="sampler", hovermode="x unified")
    fig.update_yaxes(type="log" if log_y else "linear")
    return fig
