"""Figures of the sampler-parameter study: forest plots of arms and contrasts, accuracy by depth.

Input: the study's summary (``creamviz/resources/study/summary.json``, :func:`creamviz.significance.summarize`);
builders only arrange it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from creamviz.figures.style import ARM_COLORS, FALLBACK_COLORS, TEMPLATE, display_name

__all__ = ["fig_study_forest", "fig_study_contrasts", "fig_study_depth", "fig_seed_blocks", "ARM_COLORS"]



def _check(summary: Mapping) -> None:
    if not summary.get("arms"):
        raise ValueError("summary has no arms (expected creamviz/resources/study/summary.json's layout)")


def _label(name: str, arm: Mapping) -> str:
    return f"{display_name(name)} ({len(arm['seeds'])} seeds)"


def fig_study_forest(summary: Mapping, *, title: str | None = None, order: Sequence[str] | None = None) -> go.Figure:
    """Forest plot: each arm's middle accuracy (gold depths 25–75 %) with its 95 % CI, the
    untuned base as a dashed line. Rows top to bottom in ``order`` (default: summary order)."""
    _check(summary)
    arms = summary["arms"]
    names = [n for n in (order or arms) if n in arms]
    fig = go.Figure()
    for name in names:
        a = arms[name]
        lo, hi = a["ci95"]
        fig.add_trace(go.Scatter(
            x=[a["mean"] * 100], y=[_label(name, a)], mode="markers", name=name, showlegend=False,
            marker={"size": 10, "color": ARM_COLORS.get(name, "#333333")},
            error_x={"type": "data", "symmetric": False, "array": [(hi - a["mean"]) * 100],
                     "arrayminus": [(a["mean"] - lo) * 100], "thickness": 2, "width": 6},
            hovertemplate=f"{display_name(name)}<br>%{{x:.1f}} % [{lo * 100:.1f}, {hi * 100:.1f}]<extra></extra>"))
    if "base" in summary:
        fig.add_vline(x=summary["base"]["middle_acc"] * 100, line_dash="dash", line_color=ARM_COLORS["base"],
                      annotation_text=display_name("base"), annotation_position="top")
    n_prompts = next(iter(arms.values())).get("n_middle_prompts")
    fig.update_layout(template=TEMPLATE, height=120 + 38 * len(names), margin={"l": 10},
                      title=title or f"Key-value accuracy in the middle of the context, 95 % CI "
                                     f"(two-level bootstrap; {n_prompts} prompts per model)",
                      xaxis_title="middle accuracy (%), gold pair at depths 25–75 %")
    fig.update_yaxes(autorange="reversed")
    return fig


def fig_study_contrasts(summary: Mapping, *, title: str | None = None) -> go.Figure:
    """Forest plot of the paired contrasts (A − B on the same seeds and prompts) with 95 % CIs and
    permutation p-values; zero line = no difference."""
    _check(summary)
    contrasts = summary.get("contrasts") or {}
    if not contrasts:
        raise ValueError("summary has no contrasts")
    fig = go.Figure()
    for name, c in contrasts.items():
        lo, hi = c["ci95"]
        p = c["p_value"]
        a, b = (display_name(x) for x in (c.get("arm", name), c.get("reference", "")))
        fig.add_trace(go.Scatter(
            x=[c["diff"] * 100], y=[f"{a} − {b} ({c['n_seeds']} seeds, p = {p:.2g})"], mode="markers",
            showlegend=False, marker={"size": 10, "color": ARM_COLORS.get(c.get("arm", name), "#333333"),
                                      "symbol": "diamond" if lo > 0 or hi < 0 else "circle"},
            error_x={"type": "data", "symmetric": False, "array": [(hi - c["diff"]) * 100],
                     "arrayminus": [(c["diff"] - lo) * 100], "thickness": 2, "width": 6},
            hovertemplate=f"{display_name(name)}<br>%{{x:+.1f}} points [{lo * 100:+.1f}, {hi * 100:+.1f}], p = {p:.3g}<extra></extra>"))
    fig.add_vline(x=0, line_color="#2a3f5f", line_width=1)
    fig.update_layout(template=TEMPLATE, height=120 + 38 * len(contrasts), margin={"l": 10},
                      title=title or "Paired differences in middle accuracy, 95 % CI (diamond: CI excludes 0; "
                                     "p: exact sign-flip test)",
                      xaxis_title="difference (percentage points), same seeds and prompts")
    fig.update_yaxes(autorange="reversed")
    return fig


def fig_study_depth(summary: Mapping, *, arms: Sequence[str] | None = None, title: str | None = None,
                    include_base: bool = True) -> go.Figure:
    """Key-value accuracy by depth of the gold pair, one line per arm (95 % CI bars) and the base."""
    _check(summary)
    names = [n for n in (arms or summary["arms"]) if n in summary["arms"]]
    fig = go.Figure()
    for name in names:
        a = summary["arms"][name]
        depths = sorted(a["by_depth"], key=float)
        mean = [a["by_depth"][d]["mean"] * 100 for d in depths]
        fig.add_trace(go.Scatter(
            x=[float(d) * 100 for d in depths], y=mean, name=_label(name, a), mode="lines+markers",
            line={"color": ARM_COLORS.get(name)},
            error_y={"type": "data", "symmetric": False,
                     "array": [a["by_depth"][d]["ci95"][1] * 100 - m for d, m in zip(depths, mean, strict=True)],
                     "arrayminus": [m - a["by_depth"][d]["ci95"][0] * 100 for d, m in zip(depths, mean, strict=True)]}))
    if include_base and "base" in summary:
        bd = summary["base"]["by_depth"]
        depths = sorted(bd, key=float)
        fig.add_trace(go.Scatter(x=[float(d) * 100 for d in depths], y=[bd[d] * 100 for d in depths],
                                 name=display_name("base") + " (YaRN)", mode="lines+markers",
                                 line={"color": ARM_COLORS["base"], "dash": "dash"}))
    L = summary.get("config", {}).get("target_len", "L")
    fig.update_layout(template=TEMPLATE, title=title or f"Key-value retrieval by depth of the gold pair (L = {L}), 95 % CI",
                      xaxis_title="depth of the gold pair (% of the context)", yaxis_title="accuracy (%)",
                      legend_title="arm")
    fig.update_xaxes(range=[-3, 103])
    return fig


BLOCK_COLORS = FALLBACK_COLORS  # one per seed block, in order: colours no method uses


def fig_seed_blocks(blocks: Mapping[str, Mapping], *, title: str | None = None) -> go.Figure:
    """Per-seed paired differences of each contrast, grouped by seed block, with each block's mean.

    ``blocks``: contrast label -> ``{"seeds": [...], "diff": [...] (points), "block": [block label per
    seed], "block_means": {block label: {"mean", "n"}}}`` (:func:`creamviz.study.seed_block_differences`).
    One row per contrast; x = seed, points coloured by block, a horizontal segment at each block's mean."""
    from plotly.subplots import make_subplots

    if not blocks:
        raise ValueError("blocks is empty: expected contrast label -> per-seed differences")
    names = list(blocks)
    fig = make_subplots(rows=len(names), cols=1, subplot_titles=names, vertical_spacing=0.12 / max(1, len(names) - 1) + 0.04)
    order = list(dict.fromkeys(b for d in blocks.values() for b in d["block"]))
    colors = {b: BLOCK_COLORS[i % len(BLOCK_COLORS)] for i, b in enumerate(order)}
    for row, name in enumerate(names, start=1):
        d = blocks[name]
        x = [str(s) for s in d["seeds"]]
        for b in dict.fromkeys(d["block"]):
            idx = [i for i, bb in enumerate(d["block"]) if bb == b]
            fig.add_trace(go.Scatter(x=[x[i] for i in idx], y=[d["diff"][i] for i in idx], mode="markers",
                                     name=b, legendgroup=b, showlegend=row == 1, marker={"size": 8, "color": colors[b]},
                                     hovertemplate="seed %{x}: %{y:+.1f} points<extra>" + b + "</extra>"), row=row, col=1)
            m = d["block_means"][b]
            label = f"mean {m['mean']:+.1f} (n = {m['n']})".replace("-", "−")
            mid = idx[len(idx) // 2]
            fig.add_trace(go.Scatter(x=[x[idx[0]], x[mid], x[idx[-1]]], y=[m["mean"]] * 3, mode="lines+text",
                                     line={"color": colors[b], "width": 3}, showlegend=False, legendgroup=b,
                                     text=["", label if m["n"] >= 3 else "", ""], textposition="top center",
                                     hovertext=label, hoverinfo="text"), row=row, col=1)
        fig.add_hline(y=0, line_color="#2a3f5f", line_width=1, row=row, col=1)
        fig.update_yaxes(title_text="points", row=row, col=1)
        fig.update_xaxes(type="category", title_text="seed" if row == len(names) else None, row=row, col=1)
    fig.update_layout(template=TEMPLATE, height=160 + 260 * len(names), legend_title="seed block",
                      title=title or "Per-seed paired differences in middle accuracy, by seed block")
    return fig
