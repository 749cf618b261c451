"""The Theorem B.1 audit at one configuration: |D_r| per middle placement."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from creamviz.figures.coverage import _runs
from creamviz.figures.style import SEGMENT_COLORS, TEMPLATE

__all__ = ["fig_span_profile"]

MAX_MARKED = 120  # placements drawn one marker each; more merge into a block at notebook widths


def fig_span_profile(audit, *, title: str | None = None) -> go.Figure:
    """``|D_r|`` for every feasible middle start ``P_s`` at one ``(N, L, L_h, L_t)``.

    Traces: ``|D_r|`` (line), ``maximal`` (placements reaching the maximum), ``conditions hold``
    (the reconstructed inequalities), and horizontal lines for the true maximum, the upper bound
    ``W + 2N − 3`` and the paper's constant. ``audit`` is a :class:`creamviz.theorem.TheoremAudit`.
    Up to ``MAX_MARKED`` placements ``maximal`` / ``conditions hold`` are markers; beyond, where
    markers merge, they are bars over the runs of placements, 1 and 2 above the maximum.
    """
    x, spans = np.asarray(audit.mid_starts), np.asarray(audit.spans)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=spans, name="|D_r|", mode="lines+markers",
                             line={"color": SEGMENT_COLORS["middle"]}, marker={"size": 4}))
    best = spans == audit.max_span
    cond = np.asarray(audit.conditions)
    if len(x) <= MAX_MARKED:  # one marker per placement
        fig.add_trace(go.Scatter(x=x[best], y=spans[best], name="maximal", mode="markers",
                                 marker={"symbol": "square-open", "size": 12, "color": "black", "line": {"width": 2}}))
        fig.add_trace(go.Scatter(x=x[cond], y=spans[cond], name="conditions hold", mode="markers",
                                 marker={"symbol": "x-thin", "size": 9, "line": {"width": 2, "color": "#d62728"}}))
    else:  # markers would merge into a block: the runs of placements as bars just above / below the profile
        top = float(spans.max())
        for name, mask, level, line in (("maximal", best, 1.0, {"color": "black", "width": 5}),
                                        ("conditions hold", cond, 2.0, {"color": "#d62728", "width": 5})):
            xs, ys = [], []
            for a, b in _runs(np.flatnonzero(mask)):
                xs += [x[a] - 0.5, x[b] + 0.5, None]
                ys += [top + level, top + level, None]
            fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines", line=line, connectgaps=False,
                                     hoverinfo="skip"))
    for value, name, dash in ((audit.max_span, "true max", "solid"), (audit.upper_bound, "bound W+2N−3", "dot"),
                              (audit.paper_value, "paper constant", "dash")):
        fig.add_trace(go.Scatter(x=[x.min(), x.max()], y=[value, value], name=f"{name} = {value}", mode="lines",
                                 line={"dash": dash, "width": 1, "color": "#555"}))
    fig.update_layout(template=TEMPLATE, xaxis_title="P_s (middle start)", yaxis_title="|D_r|", height=380,
                      title=title or (f"|D_r| per placement: N = {audit.train_len}, L = {audit.target_len}, "
                                      f"L_h = {audit.head_len}, L_t = {audit.tail_len}"))
    return fig
