"""A layout drawn with its distance intervals: the solver's counterexamples, made visible."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from creamviz.figures.style import SEGMENT_COLORS, TEMPLATE

__all__ = ["fig_layout_intervals"]

MAX_ID_MARKERS = 64  # position ids drawn one marker each up to this N; beyond, only the segment bars
INTERVAL_COLORS = {"within head": SEGMENT_COLORS["head"], "within middle": SEGMENT_COLORS["middle"],
                   "within tail": SEGMENT_COLORS["tail"], "head–middle": "#9467bd", "middle–tail": "#8c564b",
                   "head–tail": "#7f7f7f"}
OVERLAP_COLOR = "rgba(214, 39, 40, 0.25)"


def fig_layout_intervals(data, *, title: str | None = None) -> go.Figure:
    """One layout as position ids (top) and its six distance intervals with ``D_r`` (bottom).

    ``data`` is a :class:`creamviz.proof.DistanceIntervals`. Top: the head, middle and tail on
    ``[0, L)`` (bars, and one marker per id up to ``MAX_ID_MARKERS``). Bottom, on the distance
    axis ``[0, L)``: one bar per interval (each integer a unit cell), the union ``D_r``, and red
    bands (trace ``overlap``) where two of the four merged intervals ``[0, W−1]``, head–middle,
    middle–tail and head–tail overlap — each overlap is a distance counted twice in ``W + 2N − 3``.
    """
    lay = data.layout
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.25, 0.75], vertical_spacing=0.08)
    segments = {"head": (0, lay.head_len), "middle": (lay.mid_start, lay.mid_len),
                "tail": (lay.target_len - lay.tail_len, lay.tail_len)}
    for name, (start, length) in segments.items():
        fig.add_trace(go.Bar(y=["position ids"], x=[length], base=[start - 0.5], orientation="h", name=name,
                             marker_color=SEGMENT_COLORS[name], opacity=0.35, legendgroup="segments",
                             hovertemplate=f"{name}: ids [{start}, {start + length - 1}]<extra></extra>"), row=1, col=1)
        if lay.train_len <= MAX_ID_MARKERS:
            ids = list(range(start, start + length))
            fig.add_trace(go.Scatter(x=ids, y=["position ids"] * length, mode="markers+text", showlegend=False,
                                     text=[str(i) for i in ids], textposition="top center",
                                     marker={"color": SEGMENT_COLORS[name], "size": 10},
                                     hovertemplate="id %{x}<extra>" + name + "</extra>"), row=1, col=1)
    rows = list(data.intervals) + ["D_r (union)"]
    for name, (lo, hi) in data.intervals.items():
        fig.add_trace(go.Bar(y=[name], x=[hi - lo + 1], base=[lo - 0.5], orientation="h", name=name,
                             marker_color=INTERVAL_COLORS.get(name, "#555"), showlegend=False,
                             hovertemplate=f"{name}: distances [{lo}, {hi}]<extra></extra>"), row=2, col=1)
    for k, (lo, hi) in enumerate(data.covered):
        fig.add_trace(go.Bar(y=["D_r (union)"], x=[hi - lo + 1], base=[lo - 0.5], orientation="h",
                             name=f"D_r: |D_r| = {data.span_size}", marker_color="black", showlegend=k == 0,
                             legendgroup="union", hovertemplate=f"D_r ⊇ [{lo}, {hi}]<extra></extra>"), row=2, col=1)
    for k, (a, b, lo, hi) in enumerate(data.overlaps):
        fig.add_trace(go.Scatter(x=[lo - 0.5, hi + 0.5, hi + 0.5, lo - 0.5, lo - 0.5],
                                 y=[rows[0], rows[0], rows[-1], rows[-1], rows[0]], fill="toself", mode="lines",
                                 line={"width": 0}, fillcolor=OVERLAP_COLOR, name="overlap (counted twice in W+2N−3)",
                                 legendgroup="overlap", showlegend=k == 0,
                                 hovertemplate=f"{a} ∩ {b}: [{lo}, {hi}]<extra></extra>"), row=2, col=1)
    holds = "hold" if data.conditions else "do not hold"
    fig.update_layout(template=TEMPLATE, barmode="overlay", height=480, margin={"t": 90, "b": 110},
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -0.2, "yanchor": "top"},
                      title=title or (f"{lay}<br><sup>|D_r| = {data.span_size}, bound W+2N−3 = {data.upper_bound}, "
                                      f"paper's constant {data.paper_value}, L* = {data.min_target_len}; "
                                      f"conditions {holds}</sup>"))
    fig.update_xaxes(range=[-0.5, lay.target_len - 0.5], row=1, col=1)
    fig.update_xaxes(range=[-0.5, lay.target_len - 0.5], title_text="position id (top) / distance d (bottom)",
                     dtick=1 if lay.target_len <= 40 else None, row=2, col=1)
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(rows)), row=2, col=1)
    return fig
