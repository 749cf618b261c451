"""Figures of where sampled positions land."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from creamviz.figures.style import SEGMENT_COLORS, TEMPLATE, display_name, method_color
from creamviz.samplers import Segments
from creamviz.segment_stats import MiddlePlacement, PositionUsage

__all__ = ["fig_segment_density", "fig_middle_placement", "fig_strip", "fig_position_usage"]


def fig_segment_density(usage: PositionUsage, *, title: str | None = None) -> go.Figure:
    """Fraction of samples whose head / middle / tail covers each position of [0, L).

    One filled line per segment (traces named ``head``, ``middle``, ``tail``).
    """
    fig = go.Figure()
    for name, frac in usage.fractions.items():
        fig.add_trace(go.Scatter(x=usage.centers, y=frac, name=name, mode="lines",
                                 line={"color": SEGMENT_COLORS.get(name), "width": 1.5},
                                 fill="tozeroy", opacity=0.6,
                                 hovertemplate="position %{x:.0f}<br>%{y:.3f} of samples<extra>" + name + "</extra>"))
    fig.update_layout(template=TEMPLATE,
                      title=title or f"Where the segments land ({usage.n_samples:,} samples, L = {usage.target_len:,})",
                      xaxis_title="position id (0 … L−1)", yaxis_title="fraction of samples",
                      legend_title="segment", hovermode="x unified")
    fig.update_xaxes(range=[0, usage.target_len])
    return fig


def fig_middle_placement(placement: MiddlePlacement, *,
                         rand_factor_pmf: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                         title: str | None = None) -> go.Figure:
    """Left: distribution of P_s, P_e and the middle's centre over [0, L). Right: rand_factor.

    ``rand_factor_pmf`` maps a mode name (e.g. ``reference``, ``truncnorm``) to its exact
    ``(values, probabilities)``, drawn as bars beside the empirical frequencies of ``placement``.
    Without any rand_factor (``middle="uniform"``, PoSE) the right panel is left out.
    """
    pmf = dict(rand_factor_pmf or {})
    has_factor = bool(pmf) or len(placement.rand_factor_values) > 0
    if has_factor:
        # short panel titles: centred over panels of ~300 and ~180 px in a narrow output area, longer
        # ones ran into each other (the legend names P_s, P_e and the centre)
        fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.12,
                            subplot_titles=("middle placement", "rand_factor"))
    else:
        fig = make_subplots(rows=1, cols=1, subplot_titles=("middle placement: P_s, P_e, centre",))
    centers = (placement.edges[:-1] + placement.edges[1:] - 1) / 2.0
    for name, values, dash in (("P_s (middle start)", placement.p_start, "dot"),
                               ("P_e (middle end)", placement.p_end, "dash"),
                               ("centre (P_s+P_e)/2", placement.p_center, "solid")):
        fig.add_trace(go.Scatter(x=centers, y=values, name=name, mode="lines",
                                 line={"dash": dash, "color": SEGMENT_COLORS["middle"] if dash == "solid" else None}),
                      row=1, col=1)
    fig.update_xaxes(title_text="position id", range=[0, placement.target_len], row=1, col=1)
    fig.update_yaxes(title_text="probability per bin", row=1, col=1)
    fig.update_layout(template=TEMPLATE, barmode="group",
                      title=title or f"Where the middle [P_s, P_e] lands (L = {placement.target_len:,})")
    if not has_factor:
        return fig
    values_seen = []
    for i, (mode, (values, probs)) in enumerate(pmf.items()):
        values_seen.append(np.asarray(values))
        fig.add_trace(go.Bar(x=np.asarray(values), y=np.asarray(probs), name=f"{display_name(mode)} (exact)",
                             marker_color=method_color(mode, i), opacity=0.75), row=1, col=2)
    if len(placement.rand_factor_values):
        values_seen.append(np.asarray(placement.rand_factor_values))
        fig.add_trace(go.Scatter(x=placement.rand_factor_values, y=placement.rand_factor_freq,
                                 name=f"sampled ({placement.n_samples:,})", mode="markers",
                                 marker={"symbol": "x", "size": 8, "color": "black"}), row=1, col=2)
    seen = np.concatenate(values_seen)
    span = int(seen.max() - seen.min()) + 1
    # at most ~8 labels: whole numbers that never overlap, whatever the factor and the width
    fig.update_xaxes(title_text="rand_factor (2 … 2·factor)", tick0=int(seen.min()), dtick=max(1, -(-span // 8)),
                     row=1, col=2)
    fig.update_yaxes(title_text="probability", row=1, col=2)
    return fig


def fig_strip(segments: Segments, *, n_show: int = 12, title: str | None = None) -> go.Figure:
    """Figure-2-style strip: the first ``n_show`` sampled vectors drawn on the [0, L) axis.

    Three traces (head / middle / tail), each a horizontal bar per sample starting at the
    segment's first id; an empty segment is drawn with zero width.
    """
    if isinstance(n_show, bool) or not isinstance(n_show, int | np.integer) or n_show < 1:
        raise ValueError(f"n_show must be an integer >= 1, got {n_show!r}")
    seg = segments[: int(n_show)]
    rows = np.arange(len(seg))
    labels = [f"#{i}" + ("" if b < 0 else (" cont." if b == 0 else " rel.")) for i, b in zip(rows, seg.branch, strict=True)]
    parts = {"head": (np.zeros(len(seg), np.int64), seg.head_len),
             "middle": (seg.mid_start, seg.mid_len),
             "tail": (seg.tail_start, seg.tail_len)}
    fig = go.Figure()
    for name, (start, length) in parts.items():
        fig.add_trace(go.Bar(y=labels, x=length, base=start, orientation="h", name=name,
                             marker_color=SEGMENT_COLORS[name], showlegend=bool(np.any(length > 0)),  # PoSE: no tail
                             customdata=np.stack([start, start + length - 1], axis=1),
                             hovertemplate="[%{customdata[0]}, %{customdata[1]}]<extra>" + name + "</extra>"))
    fig.update_layout(template=TEMPLATE, barmode="overlay", bargap=0.35,
                      title=title or f"{len(seg)} sampled position vectors (N = {segments.train_len}, L = {segments.target_len:,})",
                      xaxis_title="position id", yaxis={"autorange": "reversed", "title": "sample"},
                      legend_title="segment")
    fig.update_xaxes(range=[0, segments.target_len])
    return fig


def fig_position_usage(usage_by_method: Mapping[str, PositionUsage], *, title: str | None = None,
                       log_y: bool = False) -> go.Figure:
    """How often each absolute position is used, one line per method (CREAM, PoSE, …)."""
    fig = go.Figure()
    target_len = 0
    for i, (name, usage) in enumerate(usage_by_method.items()):
        target_len = max(target_len, usage.target_len)
        fig.add_trace(go.Scatter(x=usage.centers, y=usage.fractions["all"], name=display_name(name), mode="lines",
                                 line={"color": method_color(name, i), "width": 1.5}))
    fig.update_layout(template=TEMPLATE, title=title or "How often each absolute position is trained",
                      xaxis_title="position id", yaxis_title="fraction of samples using it",
                      legend_title="method", hovermode="x unified")
    fig.update_yaxes(type="log" if log_y else "linear")
    fig.update_xaxes(range=[0, target_len])
    return fig
