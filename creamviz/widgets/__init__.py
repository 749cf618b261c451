"""Interactive explorers (ipywidgets + plotly FigureWidget) over the pure library functions."""

from creamviz.widgets.sampler import SamplerExplorer, build_sampler, sampler_figures
from creamviz.widgets.theorem import TheoremExplorer, describe_audit, theorem_figures

__all__ = ["SamplerExplorer", "TheoremExplorer", "sampler_figures", "theorem_figures", "build_sampler",
           "describe_audit"]
