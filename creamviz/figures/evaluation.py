"""Figures of long-context evaluations: accuracy by depth, NIAH
heatmap, accuracy by length, perplexity by position, pre-training curve.

Inputs are the result dataclasses of ``creamviz.evaluate``; builders only arrange them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from creamviz.figures.style import TEMPLATE, display_name, method_color
from creamviz.scores import DepthCurve, LengthCurve, NiahGrid, PplCurve, mean_over_seeds

__all__ = ["fig_accuracy_by_depth", "fig_niah_heatmap", "fig_accuracy_by_length",
           "fig_ppl_by_position", "fig_pretrain_curve"]


def fig_accuracy_by_depth(curves: Mapping[str, DepthCurve | Sequence[DepthCurve]], *,
                          title: str | None = None, percent: bool = True) -> go.Figure:
    """Lost-in-the-Middle curves: accuracy against the depth of the relevant item, one line per model.

    A value may be one ``DepthCurve`` (error bars: binomial standard error) or a list of curves from
    several seeds (averaged by ``evaluate.mean_over_seeds``; error bars: std / sqrt(k)).
    """
    if not curves:
        raise ValueError("curves is empty")
    fig = go.Figure()
    scale = 100.0 if percent else 1.0
    lengths = set()
    for i, (name, c) in enumerate(curves.items()):
        k = 1
        if not isinstance(c, DepthCurve):
            k = len(c)
            c = mean_over_seeds(c)
        lengths.add(c.length)
        label = display_name(name) if k == 1 else f"{display_name(name)} (mean of {k} seeds)"
        fig.add_trace(go.Scatter(
            x=c.depths * 100, y=c.accuracy * scale, name=label, mode="lines+markers",
            error_y={"type": "data", "array": c.stderr * scale, "visible": True},
            line={"color": method_color(name, i)},
            hovertemplate="depth %{x:.0f}%<br>accuracy %{y:.1f}<extra>" + name + "</extra>"))
    L = ", ".join(f"{x:,}" for x in sorted(lengths))
    fig.update_layout(template=TEMPLATE, title=title or f"Accuracy by position of the relevant item (L = {L})",
                      xaxis_title="depth of the relevant item (% of the context)",
                      yaxis_title="accuracy (%)" if percent else "accuracy", legend_title="model")
    fig.update_yaxes(range=[-0.05 * scale, 1.05 * scale])
    fig.update_xaxes(range=[-3, 103])
    return fig


def fig_niah_heatmap(grid: NiahGrid, *, title: str | None = None, window: int | None = None) -> go.Figure:
    """Needle-in-a-haystack heatmap: depth on y (0% = top), context length on x, accuracy as colour.

    ``window``: pre-trained window N, marked on the x axis labels with an asterisk.
    """
    xs = [f"{int(L):,}" + ("*" if window is not None and L <= window else "") for L in grid.lengths]
    ys = [f"{d * 100:.0f}%" for d in grid.depths]
    z = grid.accuracy * 100
    text = [[("" if np.isnan(v) else f"{v:.0f}") for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        x=xs, y=ys, z=z, zmin=0, zmax=100, colorscale="RdYlGn", text=text, texttemplate="%{text}",
        colorbar={"title": "accuracy (%)"},
        hovertemplate="length %{x}<br>depth %{y}<br>accuracy %{z:.0f}%<extra></extra>"))
    fig.update_layout(template=TEMPLATE, title=title or "Needle in a haystack",
                      xaxis_title="context length (tokens)" + ("; * = inside N" if window else ""),
                      yaxis_title="needle depth")
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig


def fig_accuracy_by_length(curves: Mapping[str, LengthCurve], *, title: str | None = None,
                           window: int | None = None) -> go.Figure:
    """Accuracy against context length (e.g. passkey), one line per model; ``window`` draws N."""
    if not curves:
        raise ValueError("curves is empty")
    fig = go.Figure()
    for i, (name, c) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=c.lengths, y=c.accuracy * 100, name=display_name(name), mode="lines+markers",
                                 error_y={"type": "data", "array": c.stderr * 100, "visible": True},
                                 line={"color": method_color(name, i)}))
    if window is not None:
        fig.add_vline(x=window, line_dash="dot", line_color="gray", annotation_text=f"N = {window}")
    task = next(iter(curves.values())).task
    fig.update_layout(template=TEMPLATE, title=title or f"{task}: accuracy by context length",
                      xaxis_title="context length (tokens)", yaxis_title="accuracy (%)",
                      legend_title="model")
    fig.update_xaxes(type="log")
    fig.update_yaxes(range=[-5, 105])
    return fig


def fig_ppl_by_position(curves: Mapping[str, PplCurve], *, title: str | None = None,
                        window: int | None = None, log_y: bool = True) -> go.Figure:
    """Perplexity by position bucket (one line per model, x = bucket centre); ``window`` draws N."""
    if not curves:
        raise ValueError("curves is empty")
    fig = go.Figure()
    for i, (name, c) in enumerate(curves.items()):
        centers = (c.bucket_start + c.bucket_end - 1) / 2.0
        fig.add_trace(go.Scatter(
            x=centers, y=c.ppl, name=display_name(name), mode="lines+markers", line={"color": method_color(name, i)},
            customdata=np.stack([c.bucket_start, c.bucket_end - 1], axis=-1),
            hovertemplate="positions %{customdata[0]}–%{customdata[1]}<br>ppl %{y:.2f}<extra>"
                          + name + "</extra>"))
    if window is not None:
        fig.add_vline(x=window, line_dash="dot", line_color="gray", annotation_text=f"N = {window}")
    fig.update_layout(template=TEMPLATE, title=title or "Perplexity by position",
                      xaxis_title="token position", yaxis_title="perplexity (per byte token)",
                      legend_title="model")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def fig_pretrain_curve(log: Sequence[Mapping], *, title: str | None = None) -> go.Figure:
    """Pre-training loss (left axis) and in-window accuracies (right axis) from ``loss_log.csv`` rows
    (dicts with ``step``, ``loss`` and optional ``kv_acc`` / ``lines_acc`` / ... columns)."""
    if not log:
        raise ValueError("log is empty")
    steps = [int(r["step"]) for r in log]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=[float(r["loss"]) for r in log], name="loss (weighted)",
                             mode="lines", line={"color": "#7f7f7f", "width": 1}))
    acc_cols = [k for k in log[0] if k.endswith("_acc")]
    for i, col in enumerate(acc_cols):
        pts = [(int(r["step"]), float(r[col])) for r in log if str(r.get(col, "")).strip() != ""]
        if pts:
            x, y = zip(*pts, strict=True)
            fig.add_trace(go.Scatter(x=x, y=[v * 100 for v in y], name=col.replace("_acc", "") + " acc",
                                     mode="lines+markers", yaxis="y2", line={"color": method_color(col, i + 1)}))
    fig.update_layout(template=TEMPLATE, title=title or "Pre-training at N = 256",
                      xaxis_title="step", yaxis_title="loss (nats/token)",
                      yaxis2={"title": "in-window accuracy (%)", "overlaying": "y", "side": "right",
                              "range": [-5, 105], "showgrid": False, "tickmode": "linear",
                              "tick0": 0, "dtick": 20},
                      legend={"x": 1.08})
    return fig
