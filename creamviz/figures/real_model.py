"""Figures for a real model's many heads (SmolLM2: 30 layers x 9 heads = 270 maps).

``fig_head_mosaic`` tiles every pooled map into one heatmap (a 270-panel subplot grid is slow to
build and to scroll); ``fig_head_values`` draws one number per (layer, head), e.g. the attention
the question pays the first token (the sink) or the gold pair; ``fig_head_depth_curves`` the mass
on the relevant item by its depth for a few chosen heads of a ``NeedleSweep``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from creamviz.attention_result import AttentionMaps, NeedleSweep, TokenText
from creamviz.figures.style import FALLBACK_COLORS, TEMPLATE, method_color

__all__ = ["fig_head_mosaic", "fig_head_values", "fig_head_depth_curves", "fig_retrieval_scores", "fig_head_masking"]

LOG_FLOOR = 1e-6  # probabilities below this get the floor colour on the log scale


def fig_head_mosaic(maps: AttentionMaps, *, title: str | None = None, log: bool = True,
                    gap: int = 1, tokens: TokenText | None = None) -> go.Figure:
    """Every pooled map of ``maps`` in one heatmap: layers down, heads across, each tile P x P
    (query blocks down, key blocks across), ``gap`` blank cells between tiles.

    One ``go.Heatmap`` named ``"mosaic"``; ``z`` is log10 of the block probability when ``log``
    (blank = future blocks and gaps); the axis ticks name the layers and heads. Tile ``(a, c)``
    holds ``maps.pooled[a, c]`` at rows ``a (P + gap) ...``, columns ``c (P + gap) ...``.

    ``tokens``: the prompt's :class:`TokenText`. The axes become categories, one per cell row /
    column, named by layer or head, block and the block's text, so the hover of every cell shows
    its layer, head, query block's text and key block's text (the figure grows with rows + columns,
    not with cells); the marked spans are outlined: key columns of every head (gold pair, question)
    and the question's query rows of every layer.
    """
    if not isinstance(maps, AttentionMaps):
        raise ValueError(f"maps must be an AttentionMaps, got {type(maps).__name__}")
    if not isinstance(gap, int) or gap < 0:
        raise ValueError(f"gap={gap!r} must be an integer >= 0")
    if tokens is not None:
        if not isinstance(tokens, TokenText):
            raise ValueError(f"tokens must be a TokenText (creamviz.attention.token_text), got {type(tokens).__name__}")
        tokens.check_matches(maps.seq_len)
    n_l, n_h, P = len(maps.layers), len(maps.heads), maps.pool
    step = P + gap
    z = np.full((n_l * step - gap, n_h * step - gap), np.nan)
    for a in range(n_l):
        for c in range(n_h):
            tile = maps.pooled[a, c]
            if maps.is_difference or not log:
                shown = tile if maps.is_difference else np.where(tile > 0, tile, np.nan)
            else:
                shown = np.where(tile > 0, np.log10(np.maximum(tile, LOG_FLOOR)), np.nan)
            z[a * step:a * step + P, c * step:c * step + P] = shown
    what = "Δ p" if maps.is_difference else ("log10 p" if log else "p")
    x_ticks = [c * step + (P - 1) / 2 for c in range(n_h)]
    y_ticks = [a * step + (P - 1) / 2 for a in range(n_l)]
    if tokens is None:
        # hover: tile row / column (layer, head from the axis labels) and the block; no per-cell text,
        # which would multiply the figure's size for 270 tiles
        fig = go.Figure(go.Heatmap(z=z, name="mosaic", colorscale="RdBu_r" if maps.is_difference else "Viridis",
                                   colorbar={"title": what},
                                   hovertemplate="row %{y}, column %{x}<br>" + what + " %{z:.3g}<extra></extra>"))
        x_vals, y_vals = x_ticks, y_ticks
    else:
        texts = tokens.block_texts(maps.boundaries, 40)
        b = maps.boundaries

        def labels(names, role):  # one unique category per cell row / column; gaps get invisible names
            out = []
            for t, name in enumerate(names):
                out += [f"{name} · {role} tokens {b[i]}–{b[i + 1] - 1} «{texts[i]}»" for i in range(P)]
                if t < len(names) - 1:
                    out += ["\u200b" * (t * gap + g + 1) for g in range(gap)]
            return out

        x_cat = labels([f"H{h}" for h in maps.heads], "key")
        y_cat = labels([f"L{layer}" for layer in maps.layers], "query")
        fig = go.Figure(go.Heatmap(z=z, x=x_cat, y=y_cat, name="mosaic",
                                   colorscale="RdBu_r" if maps.is_difference else "Viridis", colorbar={"title": what},
                                   hovertemplate="%{y}<br>%{x}<br>" + what + " %{z:.3g}<extra></extra>"))
        x_vals, y_vals = x_ticks, y_ticks
        for name, start, stop in tokens.marks:
            color = "#9467bd" if name == "question" else "#d62728"
            i0 = int(np.searchsorted(b, start, side="right")) - 1  # first block touching the span
            i1 = int(np.searchsorted(b, stop, side="left"))  # one past the last
            for c in range(n_h):
                fig.add_shape(type="rect", x0=c * step + i0 - 0.5, x1=c * step + i1 - 0.5, y0=0, y1=1,
                              yref="paper", line={"color": color, "width": 1}, fillcolor="rgba(0,0,0,0)")
            if name == "question":
                for a in range(n_l):
                    fig.add_shape(type="rect", y0=a * step + i0 - 0.5, y1=a * step + i1 - 0.5, x0=0, x1=1,
                                  xref="paper", line={"color": color, "width": 1}, fillcolor="rgba(0,0,0,0)")
        names = ", ".join(f"{n} (" + ("purple" if n == "question" else "red") + ")" for n, _, _ in tokens.marks)
        title = title or (f"All {n_l} × {n_h} heads{' (' + maps.label + ')' if maps.label else ''}: {maps.reduce} of "
                          f"{P}×{P} blocks, T = {maps.seq_len:,} tokens" + (f"<br><sub>outlined: {names}; hover a cell "
                                                                            "for its tokens</sub>" if names else ""))
    fig.update_xaxes(tickvals=x_vals, ticktext=[f"H{h}" for h in maps.heads], side="top", showgrid=False)
    fig.update_yaxes(tickvals=y_vals, ticktext=[f"L{layer}" for layer in maps.layers], autorange="reversed",
                     showgrid=False)
    fig.update_layout(template=TEMPLATE, width=max(420, 70 * n_h + 200), height=max(360, 70 * n_l + 120),
                      title=title or f"All {n_l} × {n_h} heads{' (' + maps.label + ')' if maps.label else ''}: "
                                     f"{maps.reduce} of {P}×{P} blocks, T = {maps.seq_len:,} tokens")
    return fig


def fig_head_values(values: np.ndarray, layers: Sequence[int], heads: Sequence[int], *,
                    title: str | None = None, label: str = "value", marks: Sequence[tuple[int, int]] = (),
                    zmax: float | None = None) -> go.Figure:
    """One number per (layer, head) as a heatmap (layers down, heads across), e.g.
    ``maps.query_attention[..., 0]`` (the sink) or ``maps.mass_on(*needle)``.

    ``values`` (n_layers, n_heads); ``marks``: (layer, head) pairs outlined (e.g. ``top_heads``).
    Traces: ``go.Heatmap`` named ``label``, then one ``go.Scatter`` named ``"marked"`` if ``marks``.
    """
    v = np.asarray(values, dtype=float)
    layers, heads = list(layers), list(heads)
    if v.shape != (len(layers), len(heads)):
        raise ValueError(f"values must have shape (len(layers), len(heads)) = ({len(layers)}, {len(heads)}), "
                         f"got {v.shape}")
    fig = go.Figure(go.Heatmap(z=v, x=[f"H{h}" for h in heads], y=[f"L{layer}" for layer in layers], name=label,
                               colorscale="Viridis", zmin=0, zmax=zmax, colorbar={"title": label},
                               hovertemplate="%{y} %{x}<br>" + label + " %{z:.3g}<extra></extra>"))
    if marks:
        bad = [m for m in marks if m[0] not in layers or m[1] not in heads]
        if bad:
            raise ValueError(f"marks {bad} are not among the given layers / heads")
        fig.add_trace(go.Scatter(x=[f"H{h}" for _, h in marks], y=[f"L{layer}" for layer, _ in marks],
                                 mode="markers", name="marked",
                                 marker={"symbol": "square-open", "size": 16, "color": "#d62728",
                                         "line": {"width": 2}}, hoverinfo="skip"))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(template=TEMPLATE, width=max(380, 45 * len(heads) + 220),
                      height=max(360, 20 * len(layers) + 140), showlegend=False,
                      title=title or f"{label} per layer and head")
    return fig


def fig_head_depth_curves(sweep: NeedleSweep, heads: Sequence[tuple[int, int]], *, title: str | None = None,
                          log_y: bool = False) -> go.Figure:
    """Mass of the question on the relevant item by its depth, one line per chosen (layer, head)
    (mean over the sweep's seeds), plus the mean over all heads and the uniform share (dashed).

    Traces: ``"L{layer} H{head}"`` per head, ``"mean of heads"``, ``"uniform share"``.
    """
    if not isinstance(sweep, NeedleSweep):
        raise ValueError(f"sweep must be a NeedleSweep, got {type(sweep).__name__}")
    fig = go.Figure()
    palette = FALLBACK_COLORS  # heads, not methods: none of the method colours
    x = 100 * sweep.depths
    for i, (layer, head) in enumerate(heads):
        if layer not in sweep.layers or head not in sweep.heads:
            raise ValueError(f"heads: layer {layer} / head {head} was not computed in the sweep")
        fig.add_trace(go.Scatter(x=x, y=sweep.curve(layer, head), mode="lines+markers", name=f"L{layer} H{head}",
                                 line={"color": palette[i % len(palette)], "width": 2},
                                 hovertemplate="depth %{x:.0f}%<br>mass %{y:.3f}<extra>" + f"L{layer} H{head}</extra>"))
    fig.add_trace(go.Scatter(x=x, y=sweep.curve(), mode="lines+markers", name="mean of heads",
                             line={"color": "#444", "width": 2, "dash": "dot"}))
    fig.add_trace(go.Scatter(x=x, y=sweep.uniform.mean(1), mode="lines", name="uniform share",
                             line={"color": "#555", "dash": "dash", "width": 1}))
    fig.update_layout(template=TEMPLATE, height=420, legend_title="head",  # width: the page's (autosize)
                      xaxis_title="depth of the relevant item in the context (%)",
                      yaxis_title="attention mass of the question on it",
                      yaxis={"type": "log"} if log_y else {"rangemode": "tozero"},
                      title=title or f"{sweep.label + ': ' if sweep.label else ''}mass on the {sweep.task} item "
                                     f"by depth (L = {sweep.length:,}, {sweep.mass.shape[1]} prompt(s) per depth)")
    return fig


def fig_retrieval_scores(scores, *, title: str | None = None, threshold: float = 0.1) -> go.Figure:
    """Retrieval score per (layer, head) (Wu et al. 2024), one heatmap panel per model, side by side
    with a shared colour scale (e.g. base / CREAM / PoSE). ``scores``: a
    :class:`creamviz.retrieval_heads.RetrievalScores` or a mapping ``name -> RetrievalScores``.
    Heads above ``threshold`` (the paper's retrieval heads) are outlined.

    Traces: per panel a ``go.Heatmap`` named after the model, then a ``go.Scatter`` named
    ``"<name>: score > threshold"`` when any head passes it.
    """
    panels = dict(scores) if isinstance(scores, Mapping) else {scores.label or "model": scores}
    if not panels:
        raise ValueError("scores must hold at least one RetrievalScores")
    zmax = max(float(s.scores.max()) for s in panels.values()) or 1.0
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[
        f"{name} (exact match {s.correct.mean():.0%} of {len(s.correct)})" for name, s in panels.items()],
        shared_yaxes=True, horizontal_spacing=0.04)
    for i, (name, s) in enumerate(panels.items(), start=1):
        x, y = [f"H{h}" for h in s.heads], [f"L{layer}" for layer in s.layers]
        fig.add_trace(go.Heatmap(z=s.scores, x=x, y=y, name=name, colorscale="Viridis", zmin=0, zmax=zmax,
                                 showscale=i == len(panels), colorbar={"title": "retrieval<br>score"},
                                 hovertemplate=f"{name}<br>%{{y}} %{{x}}<br>retrieval score %{{z:.3f}}<extra></extra>"),
                      row=1, col=i)
        above = s.retrieval_heads(threshold)
        if above:
            fig.add_trace(go.Scatter(x=[f"H{h}" for _, h in above], y=[f"L{layer}" for layer, _ in above],
                                     mode="markers", name=f"{name}: score > {threshold:g}", hoverinfo="skip",
                                     marker={"symbol": "square-open", "size": 14, "color": "#d62728",
                                             "line": {"width": 2}}), row=1, col=i)
    first = next(iter(panels.values()))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(template=TEMPLATE, showlegend=False, height=max(360, 20 * len(first.layers) + 160),
                      width=max(420, len(panels) * (45 * len(first.heads) + 80) + 160),
                      title=title or f"Retrieval score per head<br><sub>{first.task}, L = {first.length:,}, "
                                     f"{len(first.correct)} prompts; outlined: score > {threshold:g}</sub>")
    return fig


def fig_head_masking(results, *, title: str | None = None) -> go.Figure:
    """Exact match of the greedy answer with the top-k retrieval heads masked (solid) against k random
    other heads masked (dashed: mean over draws; dots: each draw), by k, one colour per model.
    ``results``: a :class:`creamviz.retrieval_heads.MaskingResult` or a mapping ``name -> MaskingResult``.

    Traces per model: ``"<name>: top-k retrieval heads"``, ``"<name>: k random heads (mean)"``,
    ``"<name>: random draws"``.
    """
    runs = dict(results) if isinstance(results, Mapping) else {"model": results}
    if not runs:
        raise ValueError("results must hold at least one MaskingResult")
    fig = go.Figure()
    for i, (name, r) in enumerate(runs.items()):
        color = method_color(name, i)
        ks = [0, *r.ks]
        fig.add_trace(go.Scatter(x=ks, y=[r.baseline, *r.top], mode="lines+markers", name=f"{name}: top-k retrieval heads",
                                 line={"color": color, "width": 2}))
        fig.add_trace(go.Scatter(x=ks, y=[r.baseline, *r.random.mean(1)], mode="lines+markers",
                                 name=f"{name}: k random heads (mean)", line={"color": color, "width": 2, "dash": "dash"}))
        xs = np.repeat(np.asarray(r.ks), r.random.shape[1])
        fig.add_trace(go.Scatter(x=xs, y=r.random.ravel(), mode="markers", name=f"{name}: random draws",
                                 marker={"color": color, "size": 6, "opacity": 0.45, "symbol": "circle-open"}))
    first = next(iter(runs.values()))
    fig.update_layout(template=TEMPLATE, height=420, width=760, xaxis_title="heads masked (k)",
                      yaxis={"title": "exact match of the greedy answer", "range": [-0.03, 1.03]},
                      title=title or f"Masking the top-k retrieval heads vs k random heads "
                                     f"({first.n_prompts} prompts, {first.random.shape[1]} random draws per k)")
    return fig
