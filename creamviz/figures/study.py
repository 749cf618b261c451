"""Figures of the sampler-parameter study: forest plots of arms and contrasts, accuracy by depth.

Input: the study's summary (``creamviz/resources/study/summary.json``, :func:`creamviz.significance.summarize`);
builders only arrange it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from creamviz.figures.style import ARM_COLORS, TEMPLATE, display_name

__all__ = ["fig_study_forest", "fig_study_contrasts", "fig_study_depth", "ARM_COLORS"]



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
        fig.add_trace(go.Scatter(
            x=[c["diff"] * 100], y=[f"{display_name(name)} ({c['n_seeds']} seeds, p = {p:.2g})"], mode="markers",
            showlegend=False, marker={"size": 10, "color": ARM_COLORS.get(c.get("arm", name), "#333333"),
                                      "symbol": "diamond" if lo > 0 or hi < 0 else "circle"},
            error_x={"type": "data", "symmetric": False, "array": [(hi - c["diff"]) * 100],
                     "arrayminus": [(c["diff"] - lo) * 100], "thickness": 2, "width": 6},
            hovertemplate=f"{display_name(name)}<br>%{{x:+.1f}} points [{lo * 100:+.1f}, {hi * 100:+.1f}], p = {p:.3g}<extra></extra>"))
    fig.add_vline(x=0, line_color="#2a3f5f", line_width=1)
    fig.update_layout(template=TEMPLATE, height=120 + 38 * len(contrasts), margin={"l": 10},
                      title=title or "Paired differences in middle accuracy, 95 % CI (diamond: CI excludes 0)",
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
