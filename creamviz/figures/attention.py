"""Figures of where a model looks: pooled attention maps from ``creamviz.attention``.

All builders take :class:`creamviz.attention.AttentionMaps` (several models as a mapping
``name -> maps``, e.g. ``{"base": ..., "cream": ..., "pose": ...}``) and only arrange them.
Token axes are input indices 0 ... T-1 (not position ids); depth is the relative place of a key
in the context ``[0, query_start)`` that the question (the final ``T - query_start`` tokens) reads.
With ``tokens=`` (a :class:`creamviz.attention.TokenText`, from ``token_text`` / ``prompt_token_text``)
the real-model figures show each block's text on hover and, when the blocks are few enough to read,
on the axes, and shade its marked spans (the gold pair, the question), as CircuitsVis does.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from creamviz.attention_result import AttentionMaps, NeedleSweep, TokenText
from creamviz.figures.style import LINE_DASHES, SEGMENT_COLORS, TEMPLATE, display_name, method_color

__all__ = ["fig_attention_grid", "fig_attention_head", "fig_depth_profiles", "fig_attention_difference",
           "fig_needle_attention", "fig_needle_sweep"]

LOG_FLOOR = 1e-6  # probabilities below this are drawn at this colour on log scales
TICK_TEXT_BLOCKS = 40  # at most this many blocks per axis get their text as tick labels
TICK_CHARS = 12  # characters of block text in a tick label
HOVER_CHARS = 60  # characters of block text in a hover label
MARK_COLORS = {"question": "#9467bd"}  # colour of a marked span by name; others: GOLD_COLOR
GOLD_COLOR = "#d62728"


def _check_tokens(tokens, seq_len: int) -> TokenText | None:
    if tokens is None:
        return None
    if not isinstance(tokens, TokenText):
        raise ValueError(f"tokens must be a TokenText (creamviz.attention.token_text), got {type(tokens).__name__}")
    tokens.check_matches(seq_len)
    return tokens


def _mark_color(name: str) -> str:
    return MARK_COLORS.get(name, GOLD_COLOR)


def _block_hover(tokens: TokenText, boundaries) -> np.ndarray:
    """(P, P) hover strings: the query block's and the key block's token span and text."""
    b = np.asarray(boundaries)
    texts = tokens.block_texts(b, HOVER_CHARS)
    spans = [f"tokens {b[i]}–{b[i + 1] - 1}" if b[i + 1] - b[i] > 1 else f"token {b[i]}" for i in range(len(b) - 1)]
    rows = [f"query {spans[i]}: «{texts[i]}»" for i in range(len(texts))]
    cols = [f"key {spans[j]}: «{texts[j]}»" for j in range(len(texts))]
    return np.array([[f"{r}<br>{c}" for c in cols] for r in rows], dtype=object)


def _tick_text(tokens: TokenText, boundaries) -> tuple[list[float], list[str]] | None:
    """Block centres and their text for tick labels, or None when the blocks are too many to read."""
    b = np.asarray(boundaries)
    if len(b) - 1 > TICK_TEXT_BLOCKS:
        return None
    return list((b[:-1] + b[1:]) / 2.0), tokens.block_texts(b, TICK_CHARS)


def _as_mapping(maps) -> dict[str, AttentionMaps]:
    if isinstance(maps, AttentionMaps):
        return {maps.label or "model": maps}
    if not isinstance(maps, Mapping) or not maps or not all(isinstance(m, AttentionMaps) for m in maps.values()):
        raise ValueError("maps must be an AttentionMaps or a non-empty mapping name -> AttentionMaps")
    return dict(maps)


def _pick(maps: AttentionMaps, layer, head) -> AttentionMaps:
    """Select a layer / head (None = average over all computed ones) -> one pseudo layer x head."""
    return maps.select(layer=layer, head=head).mean()


def _which(layer, head) -> str:
    return f"layer {'mean' if layer is None else layer}, head {'mean' if head is None else head}"


def _log_z(pooled: np.ndarray) -> np.ndarray:
    """log10 of probabilities; exact zeros (future keys) become NaN, drawn blank."""
    z = np.log10(np.maximum(pooled, LOG_FLOOR))
    return np.where(pooled > 0, z, np.nan)


def _heatmap(maps: AttentionMaps, pooled: np.ndarray, *, log: bool, text=None, **kwargs) -> go.Heatmap:
    if maps.is_difference:
        z, what = pooled, "Δ p"
    elif log:
        z, what = _log_z(pooled), "log10 p"
    else:
        z, what = np.where(pooled > 0, pooled, np.nan), "p"
    # P + 1 block edges: cells span their tokens exactly, also for uneven blocks
    if text is not None:  # the blocks' token text (TokenText)
        return go.Heatmap(x=maps.boundaries, y=maps.boundaries, z=z, text=text,
                          hovertemplate=f"%{{text}}<br>{what} %{{z:.3g}}<extra></extra>", **kwargs)
    return go.Heatmap(x=maps.boundaries, y=maps.boundaries, z=z,
                      hovertemplate=f"query ≈ token %{{y:.0f}}<br>key ≈ token %{{x:.0f}}<br>{what} %{{z:.3g}}"
                                    "<extra></extra>", **kwargs)


def fig_attention_grid(maps: AttentionMaps, *, title: str | None = None, log: bool = True) -> go.Figure:
    """Layer x head grid of pooled attention heatmaps (rows = layers, columns = heads).

    One ``go.Heatmap`` per (layer, head), named ``"L{layer} H{head}"``; all share one colour axis:
    ``log10`` of the block's mean (or max) probability when ``log``; blank = future (masked) blocks.
    Query tokens run down, key tokens across (token indices, not position ids).
    """
    if not isinstance(maps, AttentionMaps):
        raise ValueError(f"maps must be an AttentionMaps, got {type(maps).__name__}")
    n_l, n_h = len(maps.layers), len(maps.heads)
    fig = make_subplots(rows=n_l, cols=n_h, horizontal_spacing=0.035, vertical_spacing=0.03,
                        row_titles=[f"layer {i}" for i in maps.layers],
                        column_titles=[f"head {h}" for h in maps.heads])
    for a, layer in enumerate(maps.layers):
        for b, head in enumerate(maps.heads):
            fig.add_trace(_heatmap(maps, maps.pooled[a, b], log=log, coloraxis="coloraxis",
                                   name=f"L{layer} H{head}"), row=a + 1, col=b + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_xaxes(showticklabels=True, row=n_l, nticks=3)
    fig.update_yaxes(showticklabels=True, col=1)
    what = "Δ p" if maps.is_difference else ("log10 p" if log else "p")
    colorscale = "RdBu_r" if maps.is_difference else "Viridis"
    coloraxis = {"colorscale": colorscale, "colorbar": {"title": what}}
    if maps.is_difference:  # symmetric around 0
        limit = float(np.abs(maps.pooled).max()) or 1e-12
        coloraxis.update(cmin=-limit, cmax=limit)
    fig.update_layout(
        template=TEMPLATE, coloraxis=coloraxis,
        height=max(320, 190 * n_l + 80), width=max(420, 180 * n_h + 160),
        title=title or (f"Attention{' (' + maps.label + ')' if maps.label else ''}: {maps.reduce} of "
                        f"{maps.pool}×{maps.pool} blocks, T = {maps.seq_len:,} tokens"))
    return fig


def fig_attention_head(maps: AttentionMaps, layer: int | None = None, head: int | None = None, *,
                       title: str | None = None, log: bool = True, tokens: TokenText | None = None) -> go.Figure:
    """One head zoomed: its pooled map with token axes and, above it, the question's attention
    along the keys (``query_attention``). ``layer`` / ``head`` None = mean over the computed ones.

    ``tokens``: the prompt's :class:`TokenText`: hover shows each block's (and each key token's)
    text; with at most ``TICK_TEXT_BLOCKS`` blocks the axes carry the block texts; its marked spans
    (gold pair, question) are shaded along the key axis (both panels) and the query axis.

    Traces: ``go.Heatmap`` named ``"map"``, ``go.Scatter`` named ``"question"`` (``customdata`` the
    question's attention per key; ``y`` the same, floored at ``LOG_FLOOR`` for the log axis).
    """
    if not isinstance(maps, AttentionMaps):
        raise ValueError(f"maps must be an AttentionMaps, got {type(maps).__name__}")
    tokens = _check_tokens(tokens, maps.seq_len)
    one = _pick(maps, layer, head)
    fig = make_subplots(rows=2, cols=1, row_heights=[0.26, 0.74], shared_xaxes=True, vertical_spacing=0.04)
    q = one.query_attention[0, 0]  # (T,)
    # on the log axis p is drawn at LOG_FLOOR at least (the line stays inside the panel); hover: true p
    key_text = None if tokens is None else [f"«{tokens.shown(t)}»" for t in tokens.tokens]
    fig.add_trace(go.Scatter(x=np.arange(one.seq_len), y=q if one.is_difference else np.maximum(q, LOG_FLOOR),
                             customdata=q, text=key_text, mode="lines", name="question", line={"width": 1, "color": "#444"},
                             hovertemplate="key token %{x}" + (" %{text}" if tokens else "")
                                           + "<br>p %{customdata:.3g}<extra>question</extra>"),
                  row=1, col=1)
    colorscale = "RdBu_r" if one.is_difference else "Viridis"
    what = "Δ p" if one.is_difference else ("log10 p" if log else "p")
    fig.add_trace(_heatmap(one, one.pooled[0, 0], log=log, name="map", colorscale=colorscale,
                           text=None if tokens is None else _block_hover(tokens, one.boundaries),
                           zmid=0.0 if one.is_difference else None,
                           colorbar={"title": what, "len": 0.72, "y": 0.36}), row=2, col=1)
    fig.update_yaxes(autorange="reversed", title_text="query token", row=2, col=1)
    if one.is_difference:
        fig.update_yaxes(title_text="Δ p, question → key", row=1, col=1)
    else:  # probabilities from 10^-6 (LOG_FLOOR) to 1, one label per two decades: 1, 10^-2, ...
        fig.update_yaxes(type="log", title_text="p, question → key", range=[np.log10(LOG_FLOOR), 0.05],
                         dtick=2, exponentformat="power", showexponent="all", row=1, col=1)
    fig.update_xaxes(title_text="key token", row=2, col=1)
    fig.add_vrect(x0=one.query_start, x1=one.seq_len, fillcolor="#999", opacity=0.15, line_width=0,
                  row=1, col=1)
    height, width = 640, 620
    if tokens is not None:
        ticks = _tick_text(tokens, one.boundaries)
        if ticks is not None:
            fig.update_xaxes(tickvals=ticks[0], ticktext=ticks[1], tickangle=-60, row=2, col=1)
            fig.update_yaxes(tickvals=ticks[0], ticktext=ticks[1], row=2, col=1)
            height, width = 760, 760
        for name, start, stop in tokens.marks:
            color = _mark_color(name)
            for row in (1, 2):  # the keys of the span, in both panels
                fig.add_vrect(x0=start, x1=stop, fillcolor=color, opacity=0.18, line_width=0, row=row, col=1)
            if name == "question":  # the question's own rows
                fig.add_hrect(y0=start, y1=stop, line={"color": color, "width": 1}, row=2, col=1)
            fig.add_annotation(x=(start + stop) / 2, y=1.0, xref="x", yref="y domain", yanchor="bottom",
                               showarrow=False, text=name, font={"color": color, "size": 11})
    fig.update_layout(template=TEMPLATE, height=height, width=width, showlegend=False,
                      title=title or f"{one.label + ': ' if one.label else ''}{_which(layer, head)}, "
                                     f"T = {one.seq_len:,} ({one.reduce} of {one.pool}×{one.pool} blocks)")
    return fig


def fig_depth_profiles(maps, *, layer: int | None = None, head: int | None = None, title: str | None = None,
                       log_y: bool = True, needle: tuple[int, int] | None = None,
                       tokens: TokenText | None = None) -> go.Figure:
    """Lost-in-the-Middle profile: attention mass the question puts on each depth bin of the
    context, one line per model (left), and the mass on the head / middle / tail thirds (right).

    ``needle``: token span ``(start, stop)`` of the relevant item (e.g. ``prompt_spans(...).needle``),
    marked on the depth axis as a shaded band labelled "gold pair" (layout shape + annotation).

    ``tokens``: the prompt's :class:`TokenText`: each depth bin's text on hover; its first marked
    span other than "question" is the needle when ``needle`` is None (labelled with the span's name),
    and the question's text appears under the title.

    ``maps``: an AttentionMaps or ``{name: AttentionMaps}`` computed on the same prompt shape.
    ``layer`` / ``head`` None = mean over the computed layers / heads. Left traces are named by model
    (x = bin centre in % of the context); right: one ``go.Bar`` per model over the thirds.
    """
    models = _as_mapping(maps)
    first = next(iter(models.values()))
    tokens = _check_tokens(tokens, first.seq_len)
    needle_name = "gold pair"
    if tokens is not None and needle is None:
        golds = [m for m in tokens.marks if m[0] != "question"]
        if golds:
            needle_name, needle = golds[0][0], golds[0][1:]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], horizontal_spacing=0.1,
                        subplot_titles=("", "mass per third"))  # left: the axis titles say it, the needle label sits above
    colors = []
    for i, (name, m) in enumerate(models.items()):
        one = _pick(m, layer, head)
        ctx = one.query_start
        b = one.depth_boundaries
        centers = 100.0 * (b[:-1] + b[1:]) / 2.0 / ctx
        color = method_color(name, i)
        colors.append(color)  # one method's variants ("contiguous", "contiguous + YaRN") share it: dashes tell them apart
        bin_text = [""] * (len(b) - 1) if tokens is None else [
            f"<br>«{tokens.span_text(int(b[j]), int(b[j + 1]), HOVER_CHARS)}»" for j in range(len(b) - 1)]
        fig.add_trace(go.Scatter(x=centers, y=one.depth_profile[0, 0], mode="lines+markers", name=display_name(name),
                                 legendgroup=name, line={"color": color, "dash": LINE_DASHES[(colors.count(color) - 1) % len(LINE_DASHES)]},
                                 customdata=np.stack([b[:-1], b[1:] - 1], axis=-1), text=bin_text,
                                 hovertemplate="tokens %{customdata[0]}–%{customdata[1]}%{text}<br>mass %{y:.3g}"
                                               f"<extra>{name}</extra>"), row=1, col=1)
        fig.add_trace(go.Bar(x=["head", "middle", "tail"], y=one.thirds[0, 0], name=display_name(name), legendgroup=name,
                             showlegend=False, marker_color=color, marker_pattern_shape="/" if colors.count(color) > 1 else "",
                             hovertemplate="%{x} third: %{y:.3g}" + f"<extra>{name}</extra>"), row=1, col=2)
    for third, x0, x1 in (("head", 0, 100 / 3), ("middle", 100 / 3, 200 / 3), ("tail", 200 / 3, 100)):
        fig.add_vrect(x0=x0, x1=x1, fillcolor=SEGMENT_COLORS[third], opacity=0.06, line_width=0, row=1, col=1)
    if needle is not None:
        try:
            start, stop = (int(v) for v in needle)
        except (TypeError, ValueError):
            raise ValueError(f"needle must be a (start, stop) token span, got {needle!r}") from None
        if not 0 <= start < stop <= first.query_start:
            raise ValueError(f"needle=({start}, {stop}) must satisfy 0 <= start < stop <= {first.query_start} "
                             "(inside the context, before the question)")
        x0, x1 = 100.0 * start / first.query_start, 100.0 * stop / first.query_start
        width = max(x1 - x0, 1.0)  # at least 1 % wide, so a short needle stays visible
        mid = (x0 + x1) / 2.0
        fig.add_vrect(x0=mid - width / 2, x1=mid + width / 2, fillcolor="#d62728", opacity=0.25, line_width=0,
                      row=1, col=1)
        fig.add_annotation(x=mid, y=1.0, xref="x", yref="y domain", yanchor="bottom", showarrow=False,
                           text=f"{needle_name} ({mid:.0f} %)", font={"color": "#d62728", "size": 11})
    fig.update_xaxes(title_text="depth of the key in the context (%)", range=[0, 100], row=1, col=1)
    fig.update_yaxes(title_text="attention mass from the question", row=1, col=1)
    if log_y:  # one label per decade, as powers of ten (minor labels crowd)
        fig.update_yaxes(type="log", dtick=1, exponentformat="power", showexponent="all", row=1, col=1)
    n_q = first.seq_len - first.query_start
    title = title or (f"Where the question looks ({_which(layer, head)}; context {first.query_start:,} tokens, "
                      f"question {n_q} token{'s' if n_q != 1 else ''})")
    if tokens is not None:  # the question's own text, under the title
        title += f"<br><sub>question: «{tokens.span_text(first.query_start, first.seq_len, 90)}»</sub>"
    fig.update_layout(template=TEMPLATE, barmode="group", height=430, legend_title="model", title=title)
    return fig


def fig_attention_difference(maps: Mapping[str, AttentionMaps], *, reference: str | None = None,
                             layer: int | None = None, head: int | None = None, title: str | None = None,
                             clip_quantile: float = 0.99) -> go.Figure:
    """Difference maps ``model - reference`` (e.g. CREAM - base, PoSE - base), side by side.

    ``reference`` defaults to the first model. ``layer`` / ``head`` None = mean over the computed
    ones. Red = the model attends more than the reference, blue = less; one colour axis,
    symmetric around 0 and clipped at the ``clip_quantile`` of |Δ| over all panels (so the
    attention sink on the first tokens does not wash out the rest; hover shows true values).
    One ``go.Heatmap`` per non-reference model, named ``"<model> - <reference>"``.
    """
    models = _as_mapping(maps)
    if len(models) < 2:
        raise ValueError(f"maps needs at least two models to difference, got {list(models)}")
    reference = next(iter(models)) if reference is None else reference
    if reference not in models:
        raise ValueError(f"reference={reference!r} is not among the models {list(models)}")
    if not 0.0 < clip_quantile <= 1.0:
        raise ValueError(f"clip_quantile={clip_quantile} must lie in (0, 1]")
    ref = _pick(models[reference], layer, head)
    diffs = {name: _pick(m, layer, head).difference(ref) for name, m in models.items() if name != reference}
    limit = float(np.quantile(np.abs(np.concatenate([d.pooled.ravel() for d in diffs.values()])), clip_quantile))
    limit = limit if limit > 0 else 1e-12
    fig = make_subplots(rows=1, cols=len(diffs), horizontal_spacing=0.04,
                        subplot_titles=[f"{name} − {reference}" for name in diffs])
    for i, (name, d) in enumerate(diffs.items()):
        fig.add_trace(_heatmap(d, d.pooled[0, 0], log=False, coloraxis="coloraxis", name=f"{name} - {reference}"),
                      row=1, col=i + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_yaxes(title_text="query token", col=1)
    fig.update_xaxes(title_text="key token")
    fig.update_layout(template=TEMPLATE, height=440, width=max(480, 400 * len(diffs) + 120),
                      coloraxis={"colorscale": "RdBu_r", "cmin": -limit, "cmax": limit, "cmid": 0.0,
                                 "colorbar": {"title": "Δ p"}},
                      title=title or f"Attention difference vs {reference} ({_which(layer, head)}, "
                                     f"{ref.reduce} of {ref.pool}×{ref.pool} blocks)")
    return fig


def fig_needle_attention(maps, needle: tuple[int, int], *, layer: int | None = None, head: int | None = None,
                         title: str | None = None) -> go.Figure:
    """Attention from the question to the needle of a NIAH / key-value prompt, per model.

    ``needle`` = token span ``(start, stop)`` of the needle (stop exclusive), e.g.
    ``(ex.gold_pos, ex.gold_pos + needle_len)``. Top: the question's attention along the keys
    (``layer`` / ``head`` None = mean), the needle shaded. Bottom: mass on the needle per layer
    (mean over heads), one ``go.Bar`` per model, with the uniform share ``(stop - start) / context``
    dashed — above it, the question singles the needle out.
    """
    models = _as_mapping(maps)
    try:
        start, stop = (int(v) for v in needle)
    except (TypeError, ValueError):
        raise ValueError(f"needle must be a (start, stop) token span, got {needle!r}") from None
    first = next(iter(models.values()))
    if not 0 <= start < stop <= first.query_start:
        raise ValueError(f"needle=({start}, {stop}) must satisfy 0 <= start < stop <= {first.query_start} "
                         "(inside the context, before the question)")
    fig = make_subplots(rows=2, cols=1, row_heights=[0.55, 0.45], vertical_spacing=0.2,
                        subplot_titles=(f"question → key tokens ({_which(layer, head)})",
                                        "attention mass on the needle, per layer (mean over heads)"))
    for i, (name, m) in enumerate(models.items()):
        color = method_color(name, i)
        one = _pick(m, layer, head)
        fig.add_trace(go.Scatter(x=np.arange(one.seq_len), y=one.query_attention[0, 0], mode="lines", name=display_name(name),
                                 legendgroup=name, line={"color": color, "width": 1},
                                 hovertemplate="key token %{x}<br>p %{y:.3g}" + f"<extra>{name}</extra>"),
                      row=1, col=1)
        per_layer = m.mass_on(start, stop).mean(axis=1)  # (layers,)
        fig.add_trace(go.Bar(x=[f"layer {layer_i}" for layer_i in m.layers], y=per_layer, name=display_name(name),
                             legendgroup=name, showlegend=False, marker_color=color,
                             hovertemplate="%{x}: %{y:.3g}" + f"<extra>{name}</extra>"), row=2, col=1)
    fig.add_vrect(x0=start - 0.5, x1=stop - 0.5, fillcolor="#d62728", opacity=0.25, line_width=0, row=1, col=1,
                  annotation_text="needle", annotation_position="top left")
    fig.add_hline(y=(stop - start) / first.query_start, line_dash="dash", line_color="#555", row=2, col=1,
                  annotation_text="uniform share", annotation_position="top right")
    fig.update_yaxes(type="log", title_text="p", row=1, col=1)
    fig.update_yaxes(title_text="mass on needle", row=2, col=1)
    fig.update_xaxes(title_text="key token", range=[0, first.seq_len], row=1, col=1)
    fig.update_layout(template=TEMPLATE, barmode="group", height=640, legend_title="model",
                      title=title or f"Does the question find the needle? (tokens {start}–{stop - 1} of "
                                     f"{first.seq_len:,})")
    return fig


def fig_needle_sweep(sweeps, *, which="best", title: str | None = None, log_y: bool = False) -> go.Figure:
    """Attention on the relevant item by its depth in the context, one line per model — the
    attention view of the Lost-in-the-Middle curve.

    ``sweeps``: a :class:`creamviz.attention.NeedleSweep` or ``{name: NeedleSweep}``. ``which``:
    ``"best"`` (each model's own best head, named in the legend), ``"mean"`` (mean over layers and
    heads) or a ``(layer, head)`` pair used for every model (e.g. the retrieval head found in the
    pre-trained window N). Sweeps may differ in length (an in-window reference beside the models at L).
    The dashed line is the share uniform attention over the context would give the item (first
    sweep). Traces: one ``go.Scatter`` per model, then ``"uniform share (L = ...)"``.
    """
    if isinstance(sweeps, NeedleSweep):
        sweeps = {sweeps.label or "model": sweeps}
    if not isinstance(sweeps, Mapping) or not sweeps or not all(isinstance(v, NeedleSweep) for v in sweeps.values()):
        raise ValueError("sweeps must be a NeedleSweep or a non-empty mapping name -> NeedleSweep")
    if not (which in ("best", "mean") or (isinstance(which, tuple) and len(which) == 2)):
        raise ValueError(f"which={which!r} must be 'best', 'mean' or a (layer, head) pair")
    fig = go.Figure()
    for i, (name, sw) in enumerate(sweeps.items()):
        if which == "mean":
            y, tag = sw.curve(), "mean of heads"
        else:
            layer, head = sw.best_head() if which == "best" else which
            if layer not in sw.layers or head not in sw.heads:
                raise ValueError(f"which={which!r}: layer {layer} / head {head} not computed for {name!r}")
            y, tag = sw.curve(layer, head), f"L{layer} H{head}"
        fig.add_trace(go.Scatter(x=100 * sw.depths, y=y, mode="lines+markers", name=f"{display_name(name)} ({tag}, L = {sw.length:,})",
                                 line={"color": method_color(name, i), "width": 2},
                                 hovertemplate="depth %{x:.0f}%<br>mass %{y:.3f}" + f"<extra>{name}</extra>"))
    first = next(iter(sweeps.values()))
    fig.add_trace(go.Scatter(x=100 * first.depths, y=first.uniform.mean(1), mode="lines",
                             name=f"uniform share (L = {first.length:,})",
                             line={"color": "#555", "dash": "dash", "width": 1}))
    fig.update_layout(template=TEMPLATE, height=420, legend_title="model (head)",
                      xaxis_title="depth of the relevant item in the context (%)",
                      yaxis_title="attention mass of the question on it",
                      yaxis={"type": "log", "dtick": 1, "exponentformat": "power", "showexponent": "all"}
                      if log_y else {"rangemode": "tozero"},
                      title=title or f"Does the question look at the {first.task} item wherever it is? "
                                     f"(L = {first.length:,} tokens, {first.mass.shape[1]} prompt(s) per depth)")
    return fig
