"""One visual language for every creamviz figure, widget, notebook and report: colours, display
names and layout defaults, defined here once.

- Methods (the position samplers): CREAM red, PoSE blue, RandPos purple, contiguous windows grey,
  the untuned base dark grey (``METHOD_COLORS``, :func:`method_color`).
- Study arms (CREAM variants): reds / oranges and the middle-mode colours (``ARM_COLORS``).
- CREAM's middle modes: reference red (CREAM's own), truncnorm teal, uniform olive.
- RoPE scalings in the decay / wavelength figures: one colour per scaling (``SCALING_COLORS``).
- :func:`display_name` turns an internal id (``"cream-sigma1"``, ``"randpos"``) into the name a
  reader sees (``"CREAM σ = 1"``, ``"RandPos"``); unknown names pass through unchanged.
"""

from __future__ import annotations

import re

import plotly.graph_objects as go

SEGMENT_COLORS = {"head": "#1f77b4", "middle": "#ff7f0e", "tail": "#2ca02c"}
METHOD_COLORS = {  # one colour per method, everywhere
    "cream": "#d62728", "pose": "#1f77b4", "randpos": "#9467bd", "contiguous": "#7f7f7f", "base": "#444444",
}
MIDDLE_COLORS = {"reference": "#d62728", "truncnorm": "#17becf", "uniform": "#bcbd22"}  # CREAM's middle modes
ARM_COLORS = {  # the study's arms: CREAM variants in reds / oranges (middle modes in their colours)
    **METHOD_COLORS,
    "cream-sigma1": "#ff9896", "cream-sigma6": "#8c1c13", "cream-uniform": MIDDLE_COLORS["uniform"],
    "cream-truncnorm": MIDDLE_COLORS["truncnorm"], "cream-continuity": "#ff7f0e", "cream-relativity": "#e377c2",
}
SCALING_COLORS = {  # RoPE scalings (θ' curves); pre-training is PRETRAINING_COLOR in figures.rope
    "default": "#222222", "linear": "#8c564b", "dynamic": "#e377c2", "yarn": "#17becf", "longrope": "#bcbd22",
    "llama3": "#2ca02c",
}
DISPLAY_NAMES = {  # internal id -> the name a reader sees
    "cream": "CREAM", "pose": "PoSE", "randpos": "RandPos", "contiguous": "contiguous windows",
    "base": "untuned base",
    "cream-sigma1": "CREAM σ = 1", "cream-sigma6": "CREAM σ = 6", "cream-uniform": "CREAM, uniform middle",
    "cream-truncnorm": "CREAM, truncated-normal middle", "cream-continuity": "CREAM, continuity only",
    "cream-relativity": "CREAM, relativity only",
    "reference": "reference", "truncnorm": "truncated normal", "uniform": "uniform",
}
LINE_DASHES = ("solid", "dash", "dot", "dashdot", "longdash")  # per line when lines may coincide
FALLBACK_COLORS = ("#2ca02c", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e")  # not a method colour
# A light template: plotly_white's look without its per-trace defaults, which cost ~25 ms per
# figure to copy and validate (too slow for explorers that redraw on every slider move).
_AXIS = {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "zerolinecolor": "#EBF0F8", "ticks": "",
         "automargin": True, "zerolinewidth": 2}
# A horizontal legend under the plot, anchored to the figure's bottom edge (not to the plot area, where
# it lands on the x-axis title), with the bottom margin that holds tick labels, the axis title and up
# to two legend rows.
LEGEND_BELOW = {"orientation": "h", "yref": "container", "y": 0.0, "yanchor": "bottom", "x": 0.0, "xanchor": "left"}
MARGIN_BELOW_PX = 110

TEMPLATE = go.layout.Template(layout={
    "paper_bgcolor": "white", "plot_bgcolor": "white", "font": {"color": "#2a3f5f"},
    "xaxis": _AXIS, "yaxis": _AXIS, "hoverlabel": {"align": "left"},
    "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692"],
    "title": {"x": 0.05},
    "autosize": True,
})
_WORD = re.compile(r"[a-z0-9]+")


def method_key(name: str) -> str | None:
    """The method a label names: the exact id (``"cream-sigma1"``) when it is one, else the first
    word when that is a method (``"cream + YaRN"``, ``"PoSE (seed 1)"`` -> ``"cream"``, ``"pose"``)."""
    low = str(name).strip().lower()
    if low in ARM_COLORS or low in MIDDLE_COLORS:
        return low
    first = _WORD.match(low)
    word = first.group(0) if first else ""
    if word in METHOD_COLORS or word in MIDDLE_COLORS:
        return word
    return None


def method_color(name: str, index: int = 0) -> str:
    """Colour of a method / arm / middle mode named by ``name`` (see :func:`method_key`); other
    names get ``FALLBACK_COLORS[index]``, colours no method uses."""
    key = method_key(name)
    if key is not None:
        return ARM_COLORS.get(key) or MIDDLE_COLORS[key]
    return FALLBACK_COLORS[index % len(FALLBACK_COLORS)]


def display_name(name: str) -> str:
    """The reader-facing name of a method, arm or middle mode (``"randpos"`` -> ``"RandPos"``,
    ``"cream-sigma1"`` -> ``"CREAM σ = 1"``, ``"cream-vs-pose"`` -> ``"CREAM − PoSE"``); a label that
    starts with a method id gets the method's name (``"cream + YaRN"`` -> ``"CREAM + YaRN"``);
    anything else is returned unchanged."""
    text = str(name)
    if "-vs-" in text:
        return " − ".join(display_name(part) for part in text.split("-vs-"))
    low = text.strip().lower()
    if low in DISPLAY_NAMES:
        return DISPLAY_NAMES[low]
    first = _WORD.match(low)
    if first and first.group(0) in ("cream", "pose", "randpos") and len(first.group(0)) < len(low):
        return DISPLAY_NAMES[first.group(0)] + text.strip()[len(first.group(0)):]
    return text


def scaling_color(name: str) -> str:
    """Colour of a RoPE scaling's curves, by the scaling's name at the start of a label
    (``"yarn θ'"``, ``"yarn θ' × attention factor² (1.2)"`` -> yarn's colour)."""
    first = _WORD.match(str(name).strip().lower())
    return SCALING_COLORS.get(first.group(0) if first else "", "#555555")
