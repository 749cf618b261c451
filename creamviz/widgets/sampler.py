"""SamplerExplorer: move N, L, k, mu, sigma … and watch every sampling figure update.

The state lives in one traitlets object; the controls are linked to its traits, and every
figure comes from :func:`sampler_figures`, a plain function you can call without widgets.
"""

from __future__ import annotations

from pathlib import Path

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import traitlets as T

from creamviz import coverage, segment_stats
from creamviz import figures as F
from creamviz.report import Section, write_report
from creamviz.samplers import MIDDLE_MODES, SAMPLERS, CreamSampler, make_sampler
from creamviz.widgets.base import ExplorerBase

__all__ = ["SamplerExplorer", "sampler_figures", "build_sampler"]

FIGURE_NAMES = ("strip", "segment_density", "middle_placement", "coverage")
MAX_RANDPOS_IDS = 400_000  # RandPos has no closed form: bound the ids it materialises


def build_sampler(method: str, train_len: int, target_len: int, *, k=None, mu=None, sigma=3.0,
                  p_continuity=0.5, middle="reference"):
    """The sampler a set of explorer parameters describes (CREAM-only ones ignored for peers)."""
    if method == "cream":
        return CreamSampler(train_len, target_len, k=k, mu=mu, sigma=sigma, p_continuity=p_continuity,
                            middle=middle)
    return make_sampler(method, train_len=train_len, target_len=target_len)


def sampler_figures(sampler, n_samples: int = 20_000, seed: int = 0, *, coverage_samples: int = 2000) -> dict[str, go.Figure]:
    """Every explorer figure for ``sampler``: strip, segment density, middle placement, coverage.

    ``n_samples`` samples feed the statistics (RandPos: at most ``400k / N`` of them, since it has
    no closed form); the coverage curve uses the first ``coverage_samples``.
    """
    if sampler.has_segments:
        seg = sampler.sample(n_samples, seed=seed)
        pmf = {sampler.middle: sampler.rand_factor_pmf()} if isinstance(sampler, CreamSampler) and \
            sampler.middle != "uniform" else None
        cov_input = seg[:coverage_samples]
        figs = {
            "strip": F.fig_strip(seg),
            "segment_density": F.fig_segment_density(segment_stats.segment_usage(seg)),
            "middle_placement": F.fig_middle_placement(segment_stats.middle_placement(seg), rand_factor_pmf=pmf),
        }
    else:  # RandPos: ids only
        n = max(1, min(n_samples, MAX_RANDPOS_IDS // sampler.train_len))
        ids = sampler.position_ids(n, seed=seed)
        usage = segment_stats.position_usage(ids, target_len=sampler.target_len)
        figs = {
            "strip": _ids_strip(ids[:12], sampler.target_len),
            "segment_density": F.fig_position_usage({sampler.name: usage},
                                                    title=f"Where the ids land ({n:,} samples; RandPos has no segments)"),
            "middle_placement": _empty_figure("RandPos has no middle segment"),
        }
        cov_input = ids[: max(1, min(coverage_samples, n, 50))]
    curve = coverage.coverage_curve(cov_input, sampler.target_len)
    figs["coverage"] = F.fig_coverage_curves({sampler.name: curve},
                                             title=f"Relative distances covered after 1 … {len(curve):,} samples")
    return figs


def _empty_figure(text: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 16})
    fig.update_layout(template="plotly_white", xaxis={"visible": False}, yaxis={"visible": False})
    return fig


def _ids_strip(ids: np.ndarray, target_len: int) -> go.Figure:
    fig = go.Figure()
    for i, row in enumerate(ids):
        fig.add_trace(go.Scattergl(x=row, y=np.full(len(row), f"#{i}"), mode="markers", showlegend=False,
                                   marker={"size": 3, "color": "#9467bd"}))
    fig.update_layout(template="plotly_white", title=f"{len(ids)} RandPos position vectors",
                      xaxis={"title": "position id", "range": [0, target_len]},
                      yaxis={"autorange": "reversed", "title": "sample"})
    return fig


class SamplerExplorer(ExplorerBase):
    """State + view of a position sampler. Set any trait (from a control or from code) and every
    figure in ``.figures`` is rebuilt; invalid combinations set ``.error`` and keep the last
    valid figures.

    Traits: ``method`` (cream / pose / randpos / contiguous), ``train_len`` (N), ``target_len``
    (L), ``k`` (None = 4·factor), ``mu`` (None = 1 + factor), ``sigma``, ``p_continuity``,
    ``middle`` (reference / truncnorm / uniform), ``n_samples``, ``seed``.
    """

    method = T.Enum(sorted(SAMPLERS), default_value="cream")
    train_len = T.Int(4096)
    target_len = T.Int(32768)
    k = T.Int(None, allow_none=True)
    mu = T.Float(None, allow_none=True)
    sigma = T.Float(3.0)
    p_continuity = T.Float(0.5)
    middle = T.Enum(list(MIDDLE_MODES), default_value="reference")
    n_samples = T.Int(20_000)
    seed = T.Int(0)

    figure_names = FIGURE_NAMES
    param_names = ("method", "train_len", "target_len", "k", "mu", "sigma", "p_continuity", "middle",
                   "n_samples", "seed")

    def _compute(self) -> dict[str, go.Figure]:
        sampler = build_sampler(self.method, self.train_len, self.target_len, k=self.k, mu=self.mu,
                                sigma=self.sigma, p_continuity=self.p_continuity, middle=self.middle)
        if isinstance(self.n_samples, bool) or self.n_samples < 1 or self.n_samples > 2_000_000:
            raise ValueError(f"n_samples={self.n_samples} is out of range: valid is [1, 2000000]")
        figs = sampler_figures(sampler, self.n_samples, self.seed)
        self.sampler = sampler
        return figs

    # ---- controls ---------------------------------------------------------------------------
    def _controls(self) -> list[W.Widget]:
        style = {"description_width": "110px"}
        layout = W.Layout(width="340px")
        c = {
            "method": W.Dropdown(options=sorted(SAMPLERS), description="method", style=style, layout=layout),
            "middle": W.Dropdown(options=list(MIDDLE_MODES), description="middle", style=style, layout=layout),
            "train_len": W.IntSlider(min=16, max=8192, step=16, description="N (train_len)", style=style,
                                     layout=layout, continuous_update=False),
            "target_len": W.IntSlider(min=32, max=262144, step=16, description="L (target_len)", style=style,
                                      layout=layout, continuous_update=False),
            "sigma": W.FloatSlider(min=0.1, max=20, step=0.1, description="σ (sigma)", style=style, layout=layout,
                                   continuous_update=False),
            "p_continuity": W.FloatSlider(min=0, max=1, step=0.05, description="p continuity", style=style,
                                          layout=layout, continuous_update=False),
            "n_samples": W.IntSlider(min=100, max=200_000, step=100, description="samples", style=style,
                                     layout=layout, continuous_update=False),
            "seed": W.IntText(description="seed", style=style, layout=layout),
        }
        for name, control in c.items():
            control.value = getattr(self, name)
            W.link((control, "value"), (self, name))
        self.controls = c
        k_box = self._optional_control("k", W.IntSlider(min=1, max=4096, description="k", style=style,
                                                        layout=W.Layout(width="270px"), continuous_update=False),
                                       default=lambda: (4 * self.target_len) // max(1, self.train_len))
        mu_box = self._optional_control("mu", W.FloatSlider(min=-10, max=64, step=0.5, description="μ (mu)",
                                                            style=style, layout=W.Layout(width="270px"),
                                                            continuous_update=False),
                                        default=lambda: 1 + self.target_len / max(1, self.train_len))
        return [c["method"], c["train_len"], c["target_len"], k_box, mu_box, c["sigma"], c["p_continuity"],
                c["middle"], c["n_samples"], c["seed"]]

    def _optional_control(self, name: str, slider: W.Widget, default) -> W.Widget:
        """A slider plus an 'auto' checkbox: checked -> trait None (the paper default)."""
        auto = W.Checkbox(value=getattr(self, name) is None, description="auto", indent=False,
                          layout=W.Layout(width="60px"))
        slider.value = default() if getattr(self, name) is None else getattr(self, name)
        slider.disabled = auto.value

        def from_controls(_=None):
            slider.disabled = auto.value
            setattr(self, name, None if auto.value else slider.value)

        def from_state(change):
            auto.value = change["new"] is None
            slider.disabled = auto.value
            if change["new"] is not None:
                slider.value = change["new"]

        def refresh_default(_=None):
            if auto.value:
                slider.value = default()

        auto.observe(from_controls, "value")
        slider.observe(lambda ch: None if auto.value else from_controls(), "value")
        self.observe(from_state, name)
        self.observe(refresh_default, ["train_len", "target_len"])
        self.controls[name] = slider
        self.controls[f"{name}_auto"] = auto
        return W.HBox([slider, auto])

    def export_html(self, path: str | Path = "creamviz_sampler.html") -> Path:
        """Write the current figures to one standalone HTML file (plotly.js embedded)."""
        params = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.param_names)
        section = Section(title="Sampler explorer", paragraphs=[params],
                          figures=[go.Figure(f) for f in self.figures.values()])
        return write_report(path, "creamviz — sampler explorer", [section])

