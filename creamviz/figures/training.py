"""Figures of fine-tuning runs: the training-loss curve (one line per run) and a titled
placeholder for figures that have no data yet.

Inputs are ``TrainResult.loss_log`` rows (``{"step", "loss", ...}``); builders only arrange them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from creamviz.figures.style import TEMPLATE, display_name, method_color

__all__ = ["fig_loss_curve", "fig_placeholder", "ema"]

EMA_WEIGHT = 0.9  # weight of the past in the smoothing line (TensorBoard's default slider value)


def ema(values: Sequence[float], weight: float = EMA_WEIGHT) -> np.ndarray:
    """Debiased exponential moving average: ``s_t = weight * s_{t-1} + (1 - weight) * v_t`` with
    ``s_0 = 0``, divided by ``1 - weight^t`` so the first points are not pulled towards 0."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"weight={weight} must lie in [0, 1)")
    v = np.asarray(values, dtype=np.float64)
    out = np.empty_like(v)
    acc = 0.0
    for t, x in enumerate(v, start=1):
        acc = weight * acc + (1.0 - weight) * x
        out[t - 1] = acc / (1.0 - weight**t)
    return out


def fig_placeholder(title: str, text: str) -> go.Figure:
    """A titled, axis-less frame with a short message: what a figure will show once there is data."""
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 14, "color": "#666"})
    fig.update_layout(template=TEMPLATE, title=title, height=260, xaxis={"visible": False},
                      yaxis={"visible": False})
    return fig


def fig_loss_curve(logs: Mapping[str, Sequence[Mapping]], *, title: str | None = None,
                   total_steps: int | None = None, smoothing: float | None = EMA_WEIGHT) -> go.Figure:
    """Training loss (nats/token) against the optimizer step, two traces per run: the per-step
    loss (thin, pale, named by the run) and its smoothing line (:func:`ema` with weight
    ``smoothing``, named ``"<run>, moving average (<smoothing>)"``; ``smoothing=None`` leaves it out).

    ``logs`` maps a run name (e.g. ``"cream"``) to its loss-log rows; a run may have no rows yet
    (empty lines, filled in live by the training launcher; the frame then says so). ``total_steps``
    fixes the x range to ``[0, total_steps]`` so a live curve grows into a steady frame. Markers
    only up to 60 steps.
    """
    if not logs:
        raise ValueError("logs is empty: give at least one run")
    if smoothing is not None and not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing={smoothing} must lie in [0, 1) or be None")
    fig = go.Figure()
    for i, (name, rows) in enumerate(logs.items()):
        color = method_color(name, i)
        steps = [int(r["step"]) for r in rows]
        losses = [float(r["loss"]) for r in rows]
        fig.add_trace(go.Scatter(
            x=steps, y=losses, name=display_name(name), legendgroup=str(name),
            mode="lines+markers" if len(rows) <= 60 else "lines", marker={"size": 4},
            line={"color": color, "width": 1}, opacity=0.4 if smoothing is not None else 1.0,
            hovertemplate="step %{x}<br>loss %{y:.3f}<extra>" + str(name) + "</extra>"))
        if smoothing is not None:
            fig.add_trace(go.Scatter(
                x=steps, y=ema(losses, smoothing), name=f"{display_name(name)}, moving average ({smoothing:g})", legendgroup=str(name),
                mode="lines", line={"color": color, "width": 2.5},
                hovertemplate="step %{x}<br>smoothed %{y:.3f}<extra>" + str(name) + "</extra>"))
    fig.update_layout(template=TEMPLATE, title=title or "Fine-tuning loss", height=380,
                      xaxis_title="optimizer step", yaxis_title="loss (nats/token)", legend_title="run")
    if not any(rows for rows in logs.values()):
        fig.add_annotation(text="no steps yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                           font={"size": 14, "color": "#666"})
    last_step = max((int(r["step"]) for rows in logs.values() for r in rows), default=1)
    if total_steps is not None:
        fig.update_xaxes(range=[0, max(1, int(total_steps)) + 0.5])
        last_step = max(1, int(total_steps))
    if last_step <= 10:
        fig.update_xaxes(tick0=0, dtick=1)  # whole steps, no 0.5 ticks
    return fig
