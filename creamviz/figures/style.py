"""Shared colours and layout defaults so every creamviz figure reads the same way."""

SEGMENT_COLORS = {"head": "#1f77b4", "middle": "#ff7f0e", "tail": "#2ca02c"}
METHOD_COLORS = {
    "cream": "#d62728", "pose": "#1f77b4", "randpos": "#9467bd", "contiguous": "#7f7f7f",
    "base": "#7f7f7f", "reference": "#d62728", "truncnorm": "#17becf", "uniform": "#bcbd22",
}
TEMPLATE = "plotly_white"


def method_color(name: str, index: int = 0) -> str:
    """Colour for a method / model name; falls back to plotly's qualitative palette."""
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    return METHOD_COLORS.get(str(name).split("-")[0].lower(), palette[index % len(palette)])
