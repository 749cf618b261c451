"""Figures of fine-tuning runs: the training-loss curve (one line per run).

Inputs are ``TrainResult.loss_log`` rows (``{"step", "loss", ...}``); builders only arrange them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from creamviz.figures.style import TEMPLATE, method_color

__all__ = ["fig_loss_curve"]


def fig_loss_curve(logs: Mapping[str, Sequence[Mapping]], *, title: str | None = None,
                   total_steps: int | None = None) -> go.Figure:
    """Training loss (nats/token) against the optimizer step, one line per run.

    ``logs`` maps a run name (e.g. ``"cream"``) to its loss-log rows; a run may have no rows yet
    (an empty line, filled in live by the training launcher). ``total_steps`` fixes the x range
    to ``[0, total_steps]`` so a live curve grows into a steady frame. Markers only up to 60 steps.
    """
    if not logs:
        raise ValueError("logs is empty: give at least one run")
    fig = go.Figure()
    for i, (name, rows) in enumerate(logs.items()):
        fig.add_trace(go.Scatter(
            x=[int(r["step"]) for r in rows], y=[float(r["loss"]) for r in rows], name=str(name),
            mode="lines+markers" if len(rows) <= 60 else "lines", marker={"size": 5}, line={"color": method_color(name, i)},
            hovertemplate="step %{x}<br>loss %{y:.3f}<extra>" + str(name) + "</extra>"))
    fig.update_layout(template=TEMPLATE, title=title or "Fine-tuning loss",
                      xaxis_title="optimizer step", yaxis_title="loss (nats/token)", legend_title="run")
    last_step = max((int(r["step"]) for rows in logs.values() for r in rows), default=1)
    if total_steps is not None:
        fig.update_xaxes(range=[0, max(1, int(total_steps)) + 0.5])
        last_step = max(1, int(total_steps))
    if last_step <= 10:
        fig.update_xaxes(tick0=0, dtick=1)  # whole steps, no 0.5 ticks
    return fig
