"""Shared colours and layout defaults so every creamviz figure reads the same way."""

import plotly.graph_objects as go

SEGMENT_COLORS = {"head": "#1f77b4", "middle": "#ff7f0e", "tail": "#2ca02c"}
METHOD_COLORS = {
    "cream": "#d62728", "pose": "#1f77b4", "randpos": "#9467bd", "contiguous": "#7f7f7f",
    "base": "#7f7f7f", "reference": "#d62728", "truncnorm": "#17becf", "uniform": "#bcbd22",
}
LINE_DASHES = ("solid", "dash", "dot", "dashdot", "longdash")  # per line when lines may coincide
# A light template: plotly_white's look without its per-trace defaults, which cost ~25 ms per
# figure to copy and validate (too slow for explorers that redraw on every slider move).
_AXIS = {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "zerolinecolor": "#EBF0F8", "ticks": "",
         "automargin": True, "zerolinewidth": 2}
TEMPLATE = go.layout.Template(layout={
    "paper_bgcolor": "white", "plot_bgcolor": "white", "font": {"color": "#2a3f5f"},
    "xaxis": _AXIS, "yaxis": _AXIS, "hoverlabel": {"align": "left"},
    "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692"],
    "title": {"x": 0.05},
})


def method_color(name: str, index: int = 0) -> str:
    """Colour for a method / model name; falls back to plotly's qualitative palette."""
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    return METHOD_COLORS.get(str(name).split("-")[0].lower(), palette[index % len(palette)])
