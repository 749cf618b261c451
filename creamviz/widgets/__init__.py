"""Interactive explorers (ipywidgets + plotly figures) over the pure library functions."""

from creamviz.theorem import describe_audit
from creamviz.widgets.rope import RopeExplorer, rope_figures
from creamviz.widgets.sampler import SamplerExplorer, build_sampler, sampler_figures
from creamviz.widgets.theorem import TheoremExplorer, theorem_figures
from creamviz.widgets.training import TrainingLauncher

__all__ = ["RopeExplorer", "rope_figures", "SamplerExplorer", "TheoremExplorer", "TrainingLauncher", "sampler_figures", "theorem_figures", "build_sampler",
           "describe_audit"]
