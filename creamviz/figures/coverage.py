"""Figures of relative-position coverage and the Theorem B.1 audit.

Data come from :mod:`creamviz.coverage` (curves, per-distance frequencies) and
:func:`creamviz.theorem.region_map`; the builders only arrange them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from creamviz.figures.style import LINE_DASHES, TEMPLATE, display_name, method_color
from creamviz.theorem import RegionMap

__all__ = ["fig_region_map", "fig_coverage_curves", "fig_distance_frequency", "cell_outline"]


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


def _cell_edges(centers: np.ndarray) -> np.ndarray:
    """(n,) cell centres -> (n + 1,) cell edges, halfway between neighbours (unit cells if n == 1)."""
    c = np.asarray(centers, dtype=np.float64)
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mids = (c[:-1] + c[1:]) / 2.0
    return np.concatenate([[c[0] - (mids[0] - c[0])], mids, [c[-1] + (c[-1] - mids[-1])]])


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Sorted integer indices -> inclusive (first, last) runs of consecutive values."""
    if len(indices) == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) > 1)
    return list(zip(indices[np.r_[0, breaks + 1]].tolist(), indices[np.r_[breaks, len(indices) - 1]].tolist(),
                    strict=True))


def cell_outline(mask: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[list, list]:
    """The outline of the True cells of a heatmap grid, as one line trace's ``(x, y)`` with None
    between pieces: every edge between a True cell and a False (or outside) neighbour, collinear
    edges merged. ``mask`` (len(y), len(x)) bool; ``x`` / ``y`` the cell centres."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (len(y), len(x)):
        raise ValueError(f"mask must have shape (len(y), len(x)) = {(len(y), len(x))}, got {mask.shape}")
    xe, ye = _cell_edges(x), _cell_edges(y)
    padded = np.pad(mask, 1)
    xs: list = []
    ys: list = []
    horizontal = padded[1:, 1:-1] != padded[:-1, 1:-1]  # (H + 1, X): edge below row r (y edge r)
    for r in np.flatnonzero(horizontal.any(axis=1)):
        for a, b in _runs(np.flatnonzero(horizontal[r])):
            xs += [xe[a], xe[b + 1], None]
            ys += [ye[r], ye[r], None]
    vertical = padded[1:-1, 1:] != padded[1:-1, :-1]  # (H, X + 1): edge left of column c (x edge c)
    for c in np.flatnonzero(vertical.any(axis=0)):
        for a, b in _runs(np.flatnonzero(vertical[:, c])):
            xs += [xe[c], xe[c], None]
            ys += [ye[a], ye[b + 1], None]
    return xs, ys


def fig_region_map(region: RegionMap, *, title: str | None = None, deficit: bool = False) -> go.Figure:
    """``|D_r|`` over every middle placement (x: ``P_s``) and head length (y: ``L_h``).

    Left: heatmap of ``|D_r|`` (or, with ``deficit=True``, ``|D_r| - (W + 2N - 3)``, 0 at the
    bound); blank cells are infeasible placements. On top, outlines along the cell edges
    (:func:`cell_outline`; readable at any N and L, where per-cell markers merge into blocks): a
    black line around the placements that reach the row's maximum (trace ``maximal``) and a dotted
    red one around those where the reconstructed conditions hold (trace ``conditions hold``) —
    the two outlines coincide exactly when the theorem's "iff" holds.
    Right: per head length the true maximum, the upper bound ``W + 2N - 3`` and the paper's
    constant ``max(L_h - 1, P_e - P_s, L_t - 1) + 2N``.
    Legend above the panels, colorbar right of them: neither covers data or titles.
    """
    if not isinstance(region, RegionMap):
        raise ValueError(f"region must be a creamviz.theorem.RegionMap, got {type(region).__name__}")
    fig = make_subplots(rows=1, cols=2, column_widths=[0.72, 0.28], horizontal_spacing=0.07, shared_yaxes=True)
    z = region.spans - region.upper_bounds[:, None] if deficit else region.spans
    z = z.astype(np.float32)  # whole numbers < 2^24: exact, and half the bytes to send and draw
    what = "|D_r| − bound" if deficit else "|D_r|"
    fig.add_trace(go.Heatmap(x=region.mid_starts, y=region.head_lens, z=z, name="|D_r|", colorscale="Viridis",
                             colorbar={"title": {"text": what, "side": "right"}, "x": 1.01, "xanchor": "left",
                                       "thickness": 14},
                             hovertemplate="P_s %{x}<br>L_h %{y}<br>" + what + " %{z}<extra></extra>"), row=1, col=1)
    for name, mask, line in (("maximal", region.is_max, {"color": "black", "width": 3}),
                             ("conditions hold", region.conditions, {"color": "#d62728", "width": 2, "dash": "dot"})):
        xs, ys = cell_outline(mask, region.mid_starts, region.head_lens)
        fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines", line=line, hoverinfo="skip",
                                 connectgaps=False), row=1, col=1)
    row_max = np.nanmax(region.spans, axis=1)
    mode = "lines+markers" if len(region.head_lens) <= 16 else "lines"  # markers merge beyond ~16 rows
    # the true max is drawn wide and pale so that the bound, where it is reached, shows on top of it
    for name, values, line in (("true max", row_max, {"color": "#c5b0d5", "width": 6}),
                               ("upper bound W+2N−3", region.upper_bounds, {"color": "#2a3f5f", "dash": "dot"}),
                               ("paper: max(L_h−1, P_e−P_s, L_t−1)+2N", region.paper_values,
                                {"color": "#17becf", "dash": "dash"})):
        fig.add_trace(go.Scatter(x=values, y=region.head_lens, name=name, mode=mode, line=line,
                                 hovertemplate="L_h %{y}: %{x}<extra>" + name + "</extra>"), row=1, col=2)
    tails = "L_t = L_h" if np.array_equal(region.tail_lens, region.head_lens) else f"L_t = {int(region.tail_lens[0])}"
    fig.update_layout(template=TEMPLATE, height=470,
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"},
                      title=title or f"Theorem B.1 region map (N = {region.train_len}, L = {region.target_len}, {tails})")
    fig.update_xaxes(title_text=f"P_s (middle start); colour: {what} per placement", row=1, col=1)
    fig.update_xaxes(title_text="max |D_r| vs constants", row=1, col=2)
    fig.update_yaxes(title_text="L_h (head length)", row=1, col=1)
    return fig


def fig_coverage_curves(curves: Mapping[str, np.ndarray], *, title: str | None = None,
                        log_x: bool = True) -> go.Figure:
    """Fraction of ``[0, L)`` covered by the union of ``D_r`` after 1 … n samples, one line per
    sampler (``curves``: name -> (n,) array from :func:`creamviz.coverage.coverage_curve`)."""
    curves = _check_mapping("curves", curves)
    fig = go.Figure()
    for i, (name, frac) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=np.arange(1, len(frac) + 1), y=frac, name=display_name(name), mode="lines",
                                 line={"color": method_color(name, i), "width": 2},
                                 hovertemplate="%{x} samples: %{y:.4f}<extra>" + display_name(name) + "</extra>"))
    fig.update_layout(template=TEMPLATE, title=title or "Relative distances covered as samples accumulate",
                      xaxis_title="number of samples", yaxis_title="fraction of [0, L) covered",
                      legend_title="sampler")
    if log_x:  # one label per decade (minor "2, 5" labels crowd at explorer widths)
        fig.update_xaxes(type="log", dtick=1)
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
        # lines may coincide (RandPos and contiguous both sit at 1.0 for d < N): a dash pattern and a
        # width per line keep every one of them visible where they overlap
        fig.add_trace(trace(x=distances, y=frac, name=display_name(name), mode="lines",
                            line={"color": method_color(name, i), "width": 3.5 if i == 0 else 2,
                                  "dash": LINE_DASHES[i % len(LINE_DASHES)]}))
    fig.update_layout(template=TEMPLATE, title=title or "How often each relative distance is trained",
                      xaxis_title="relative distance d", yaxis_title="share of samples with d ∈ D_r",
                      legend_title="sampler", hovermode="x unified")
    if log_y:  # one label per decade (minor labels crowd); a little room above 1.0
        low = min((float(v[v > 0].min()) for v in freqs.values() if (v > 0).any()), default=1e-3)
        fig.update_yaxes(type="log", dtick=1, exponentformat="power",
                         range=[np.floor(np.log10(low)) - 0.05, 0.12])
    else:
        fig.update_yaxes(range=[0, 1.05])
    return fig
