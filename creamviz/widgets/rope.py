"""RopeExplorer: pick a RoPE scaling and a sampler, and see what each rotary pair is asked to do.

The state lives in one traitlets object; every figure comes from :func:`rope_figures`, a plain
function of the parameters. ``link_sampler(explorer)`` ties N, L, the method and CREAM's
parameters to a :class:`~creamviz.widgets.SamplerExplorer` (traitlets links both ways), so the
distances on the sampler's screen are the ones whose angles are shown here.

    sampler = SamplerExplorer()
    rope = RopeExplorer(scaling="yarn")
    rope.link_sampler(sampler)
    rope                  # the widget
    rope.set_params(scaling="linear", factor=16)   # the same from code
"""

from __future__ import annotations

import math
from pathlib import Path

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import traitlets as T

from creamviz import figures as F
from creamviz import rope
from creamviz.report import Section, write_report
from creamviz.samplers import SAMPLERS, sampler_parameters
from creamviz.validation import check_int
from creamviz.widgets.base import ExplorerBase, show_auto, show_figure
from creamviz.widgets.sampler import (
    SamplerExplorer,
    build_sampler,
    ids_distance_frequency,
    sampler_traits,
)

__all__ = ["RopeExplorer", "rope_figures", "update_in_place", "MODELS", "FiniteLink"]

FIGURE_NAMES = ("wavelengths", "decay", "phase", "distance_dimension")
SPECTRUM_FIGURES = ("wavelengths", "decay")  # depend on the scaling only
COVERAGE_FIGURES = ("phase", "distance_dimension")  # depend on the scaling and the sampler
MODELS = ("llama2-7b", "smollm2-135m", "tiny")  # the model dropdown; any config / directory works from code
MAX_TARGET_LEN = 1 << 18  # L limit of the explorer (the phase maps hold d/2 x L cells)
DECAY_POINTS = 400  # distances the decay curve is drawn at (geometric grid)
DISTANCE_BINS = 128  # distance bins of the distance x pair map


def rope_figures(spectrum: rope.RopeSpectrum, frequency, method: str, *, n_bins: int = 64,
                 n_distance_bins: int = DISTANCE_BINS, decay_points: int = DECAY_POINTS,
                 names=FIGURE_NAMES) -> dict[str, go.Figure]:
    """The explorer's figures (those in ``names``): the wavelengths and the decay of ``spectrum``;
    the phase map and the distance × pair map of ``method``, whose trained distances have the (L,)
    frequency ``frequency`` (:func:`creamviz.rope.sampler_distance_frequency`)."""
    unknown = set(names) - set(FIGURE_NAMES)
    if unknown:
        raise ValueError(f"unknown figure(s) {sorted(unknown)}; valid: {', '.join(FIGURE_NAMES)}")
    figs = {}
    if "wavelengths" in names:
        figs["wavelengths"] = F.fig_rope_wavelengths(spectrum)
    if "decay" in names:
        curves = rope.decay_curves(spectrum, decay_points)
        empty = np.zeros(0)
        for k in range(3 - len(curves)):  # always three traces: redrawn in place when the scaling changes
            curves[" " * (k + 1)] = (empty, empty)
        figs["decay"] = F.fig_rope_decay(curves, train_len=spectrum.train_len, target_len=spectrum.target_len)
    if set(COVERAGE_FIGURES) & set(names):
        cov = rope.phase_coverage(spectrum, frequency, method=method, n_bins=n_bins, n_distance_bins=n_distance_bins)
        if "phase" in names:
            figs["phase"] = F.fig_phase_coverage(cov)
        if "distance_dimension" in names:
            figs["distance_dimension"] = F.fig_distance_dimension({method: cov})
    return figs


def _props(obj) -> dict:
    props = obj.to_plotly_json()
    props.pop("type", None)
    props.pop("uid", None)
    return props


def update_in_place(widget: go.FigureWidget, fig: go.Figure) -> bool:
    """Copy ``fig`` into ``widget`` as ONE plotly update (one redraw in the browser) when both have
    the same trace types in the same order and no property of the old figure would be left over;
    return False (widget untouched) otherwise. Replacing the traces instead costs the browser a
    delete, an add and a relayout, each a redraw. ``fig`` must hold no NaN (widget messages are JSON)."""
    if len(widget.data) != len(fig.data) or any(a.type != b.type for a, b in zip(widget.data, fig.data, strict=True)):
        return False
    new_traces = [_props(t) for t in fig.data]
    new_layout = fig.layout.to_plotly_json()
    if any(set(_props(a)) - set(b) for a, b in zip(widget.data, new_traces, strict=True)) or \
            set(widget.layout.to_plotly_json()) - set(new_layout):
        return False
    with widget.batch_update():
        for trace, props in zip(widget.data, new_traces, strict=True):
            trace.update(props, overwrite=True)
        widget.layout.update(new_layout, overwrite=True)
    return True


class FiniteLink(T.link):
    """``traitlets.link`` for parameters shared by two explorers: a NaN or ±inf set on either side is
    refused (the side it was set on gets its previous value back, and a TraitError names the
    parameter), since NaN != NaN would break the link with the value half-propagated."""

    def _refuse(self, side, change) -> bool:
        value = change.new
        if not isinstance(value, float) or math.isfinite(value):
            return False
        with self._busy_updating():
            setattr(side[0], side[1], change.old)
        raise T.TraitError(f"{side[1]}={value!r}: a parameter shared by linked explorers must be a finite number")

    def _update_target(self, change) -> None:
        if self.updating or not self._refuse(self.source, change):
            super()._update_target(change)

    def _update_source(self, change) -> None:
        if self.updating or not self._refuse(self.target, change):
            super()._update_source(change)


class RopeExplorer(ExplorerBase):
    """State + view of a RoPE scaling and the angles a sampler's distances exercise.

    Traits: ``model`` (``"llama2-7b"``, ``"smollm2-135m"``, ``"tiny"`` or a local directory:
    head_dim and θ come from it), ``scaling`` (default / linear / dynamic / yarn / llama3 /
    longrope), ``factor`` (None = L / N), ``train_len`` (N), ``target_len`` (L), ``rope_theta``
    (None = the model's), ``beta_fast`` / ``beta_slow`` (YaRN), ``low_freq_factor`` /
    ``high_freq_factor`` (Llama 3), ``short_factor`` / ``long_factor`` (LongRoPE, required for it),
    ``seq_len`` (None = L; dynamic and longrope only), the sampler's ``method`` and one trait per
    registered sampler parameter (CREAM's ``k``, ``mu``, ``sigma``, …, as the SamplerExplorer), and
    ``n_samples`` (RandPos: fewer, see :func:`~creamviz.widgets.sampler.ids_distance_frequency`), ``seed``,
    ``n_bins`` (phase bins).
    ``.spectrum`` is the last valid :class:`~creamviz.rope.RopeSpectrum`.
    """

    model = T.Unicode("llama2-7b")
    scaling = T.Enum(list(rope.SCALINGS), default_value="yarn")
    factor = T.Float(None, allow_none=True)
    train_len = T.Int(4096)
    target_len = T.Int(32768)
    rope_theta = T.Float(None, allow_none=True)
    beta_fast = T.Float(32.0)
    beta_slow = T.Float(1.0)
    low_freq_factor = T.Float(1.0)
    high_freq_factor = T.Float(4.0)
    short_factor = T.List(T.Float(), default_value=None, allow_none=True)
    long_factor = T.List(T.Float(), default_value=None, allow_none=True)
    seq_len = T.Int(None, allow_none=True)
    method = T.Unicode("cream")  # any registered sampler; its parameters are traits too (see __init__)
    n_samples = T.Int(2000)
    seed = T.Int(0)
    n_bins = T.Int(64)

    figure_names = FIGURE_NAMES
    rope_param_names = ("model", "scaling", "factor", "train_len", "target_len", "rope_theta", "beta_fast",
                        "beta_slow", "low_freq_factor", "high_freq_factor", "short_factor", "long_factor", "seq_len")

    def __init__(self, **params) -> None:
        self.add_traits(**sampler_traits())  # one trait per registered sampler parameter, as the SamplerExplorer
        self.sampler_param_names = tuple(sampler_parameters())
        self.param_names = (*self.rope_param_names, "method", *self.sampler_param_names, "n_samples", "seed", "n_bins")
        self._frequencies: dict = {}  # sampler key -> (L,) distance frequency (the scaling does not change it)
        self._shown: dict = {}  # keys of what the figures show: only what changed is rebuilt
        self._links: list = []
        self.spectrum = None
        super().__init__(**params)

    # ---- state -> figures -------------------------------------------------------------------
    def scaling_params(self) -> dict:
        """The keyword arguments of :func:`creamviz.rope.rope_spectrum` the traits describe."""
        big_n, big_l = self.train_len, self.target_len
        check_int("train_len", big_n, 2)  # N before L / N
        if isinstance(big_l, bool) or big_l <= big_n or big_l > MAX_TARGET_LEN:
            raise ValueError(f"target_len={big_l} is out of range: valid is [train_len + 1 = {big_n + 1}, "
                             f"{MAX_TARGET_LEN}]")
        kwargs = {"train_len": big_n, "target_len": big_l, "rope_theta": self.rope_theta}
        if self.scaling != "default":
            kwargs["factor"] = big_l / big_n if self.factor is None else self.factor
        if self.scaling == "yarn":
            kwargs.update(beta_fast=self.beta_fast, beta_slow=self.beta_slow)
        elif self.scaling == "llama3":
            kwargs.update(low_freq_factor=self.low_freq_factor, high_freq_factor=self.high_freq_factor)
        elif self.scaling == "longrope":
            kwargs.update(short_factor=self.short_factor, long_factor=self.long_factor)
        if self.scaling in ("dynamic", "longrope"):
            kwargs["seq_len"] = self.seq_len
        return kwargs

    def _sampler_key(self, method: str) -> tuple:
        if method not in SAMPLERS:
            raise ValueError(f"method={method!r} is not a registered sampler; valid: {', '.join(sorted(SAMPLERS))}")
        declared = tuple((p.name, getattr(self, p.name)) for p in SAMPLERS[method].parameters)
        return method, self.train_len, self.target_len, declared, self.n_samples, self.seed

    def _frequency(self, method: str) -> np.ndarray:
        """(L,) distance frequency of ``method``'s samples (cached: the scaling does not change it)."""
        if isinstance(self.n_samples, bool) or not 1 <= self.n_samples <= 200_000:
            raise ValueError(f"n_samples={self.n_samples} is out of range: valid is [1, 200000]")
        key = self._sampler_key(method)
        if key not in self._frequencies:
            sampler = build_sampler(method, self.train_len, self.target_len, **dict(key[3]))
            if len(self._frequencies) > 16:
                self._frequencies.clear()
            if sampler.has_segments:  # closed form from the segments
                self._frequencies[key] = rope.sampler_distance_frequency(sampler, self.n_samples, self.seed)
            else:  # RandPos: ids within the explorers' time budget (see ids_distance_frequency)
                self._frequencies[key] = ids_distance_frequency(sampler, self.n_samples, self.seed)[0]
        return self._frequencies[key]

    def _compute(self) -> dict[str, go.Figure]:
        if isinstance(self.n_bins, bool) or not 4 <= self.n_bins <= 512:
            raise ValueError(f"n_bins={self.n_bins} is out of range: valid is [4, 512]")
        kwargs = self.scaling_params()
        spectrum = rope.rope_spectrum(self.model, None if self.scaling == "default" else self.scaling, **kwargs)
        frequency = self._frequency(self.method)
        spectrum_key = (self.model, self.scaling, repr(sorted(kwargs.items())))
        coverage_key = (spectrum_key, self._sampler_key(self.method), self.n_bins)
        names = [*(SPECTRUM_FIGURES if spectrum_key != self._shown.get("spectrum") else ()),
                 *(COVERAGE_FIGURES if coverage_key != self._shown.get("coverage") else ())]
        figs = rope_figures(spectrum, frequency, self.method, n_bins=self.n_bins, names=names)
        self.spectrum = spectrum
        self._shown = {"spectrum": spectrum_key, "coverage": coverage_key}  # figures unchanged otherwise
        return figs

    # go.Figures in the responsive grid (FigureWidgets keep plotly's 700 px and cut colour bars and
    # titles in narrower output areas); only the figures whose content changed are redrawn
    uses_figure_widgets = False

    def _show_figure(self, widget: go.Figure, fig: go.Figure) -> None:
        if not update_in_place(widget, fig):  # same structure: one redraw instead of three
            show_figure(widget, fig)

    # ---- linking ----------------------------------------------------------------------------
    def link_sampler(self, explorer: SamplerExplorer) -> list:
        """Tie N, L, the method and every sampler parameter to ``explorer`` (both ways); the explorer's
        current values win. Returns the ``traitlets.link`` objects (``unlink_sampler()`` removes them)."""
        if not isinstance(explorer, SamplerExplorer):
            raise ValueError(f"explorer must be a SamplerExplorer, got {type(explorer).__name__}")
        self.unlink_sampler()
        shared = ("method", "train_len", "target_len", *self.sampler_param_names)
        with self.hold_updates():
            self._links = [FiniteLink((explorer, name), (self, name)) for name in shared if explorer.has_trait(name)]
        return self._links

    def unlink_sampler(self) -> None:
        for link in self._links:
            link.unlink()
        self._links = []

    # ---- controls ---------------------------------------------------------------------------
    def _controls(self) -> list[W.Widget]:
        style = {"description_width": "110px"}
        layout = W.Layout(width="340px")
        models = list(MODELS) if self.model in MODELS else [self.model, *MODELS]
        c = {
            "model": W.Dropdown(options=models, description="model", style=style, layout=layout),
            "scaling": W.Dropdown(options=list(rope.SCALINGS), description="scaling", style=style, layout=layout),
            "train_len": W.IntSlider(min=64, max=16384, step=64, description="N (train_len)", style=style,
                                     layout=layout, continuous_update=False),
            "target_len": W.IntSlider(min=128, max=MAX_TARGET_LEN, step=64, description="L (target_len)",
                                      style=style, layout=layout, continuous_update=False),
            "beta_fast": W.FloatSlider(min=1, max=128, step=1, description="YaRN β_fast", style=style,
                                       layout=layout, continuous_update=False),
            "beta_slow": W.FloatSlider(min=0.25, max=16, step=0.25, description="YaRN β_slow", style=style,
                                       layout=layout, continuous_update=False),
            "method": W.Dropdown(options=list(SAMPLERS), description="sampler", style=style, layout=layout),
            "middle": W.Dropdown(options=list(sampler_parameters()["middle"].choices), description="CREAM middle",
                                 style=style, layout=W.Layout(width="340px")),  # its own: it is hidden alone
            "n_samples": W.IntSlider(min=100, max=20_000, step=100, description="samples", style=style,
                                     layout=layout, continuous_update=False),
            "n_bins": W.IntSlider(min=8, max=256, step=8, description="phase bins", style=style, layout=layout,
                                  continuous_update=False),
        }
        for name, control in c.items():
            self.bind(name, control)
        factor_box = self._auto_control(
            "factor", W.FloatSlider(min=1, max=64, step=0.5, description="factor", style=style,
                                    layout=W.Layout(width="270px"), continuous_update=False),
            default=lambda: self.target_len / max(1, self.train_len), refresh_on=("train_len", "target_len"),
            rule="L/N")
        theta_box = self._auto_control(
            "rope_theta", W.FloatLogSlider(min=2, max=7, step=0.05, base=10, description="base θ", style=style,
                                           layout=W.Layout(width="270px"), continuous_update=False),
            default=self._model_theta, refresh_on=("model",), rule="the model's")
        self.observe(self._refresh_sampler_controls, ["method", "middle", "train_len"])
        self._refresh_sampler_controls()
        return [c["model"], c["scaling"], factor_box, c["train_len"], c["target_len"], theta_box, c["beta_fast"],
                c["beta_slow"], c["method"], c["middle"], c["n_samples"], c["n_bins"]]

    def _refresh_sampler_controls(self, _change=None) -> None:
        """CREAM's middle control shows with CREAM only; the L slider steps over valid L only."""
        self.controls["middle"].layout.display = "" if self.method == "cream" else "none"
        SamplerExplorer._step_target_len(self, self.train_len, default_step=64, default_min=128)

    def _auto_control(self, name: str, control: W.Widget, default, refresh_on: tuple[str, ...],
                      rule: str = "") -> W.Widget:
        """A bound slider plus an 'auto' checkbox: checked = trait None, the slider (disabled) shows
        ``default()``; neither ever rewrites the state on its own."""
        self.bind(name, control)
        auto = W.Checkbox(value=getattr(self, name) is None, description="auto", indent=False,
                          layout=W.Layout(width="60px"))
        note = W.HTML(layout=W.Layout(width="auto"))  # "= 8 (auto: L/N)" while auto
        key = f"{name}_auto"
        self.controls[key] = auto
        self.controls[f"{name}_note"] = note

        def show(_=None):  # state -> checkbox and the slider's shown default
            self._syncing.update((key, name))
            try:
                auto.value = getattr(self, name) is None
                if auto.value:
                    try:
                        value = default()
                        if not isinstance(control, W.FloatLogSlider) and value > control.max:
                            control.max = value  # show the value used (e.g. L / N = 256), not the clamped max
                        control.value = value
                    except (ValueError, ZeroDivisionError, TypeError):
                        pass
                show_auto(control, note, auto.value, rule)
            finally:
                self._syncing.difference_update((key, name))

        def from_checkbox(change):
            if key not in self._syncing:
                setattr(self, name, None if change["new"] else control.value)

        auto.observe(from_checkbox, "value")
        self.observe(show, [name, *refresh_on])
        show()
        return W.HBox([control, note, auto], layout=W.Layout(align_items="center"))

    def _model_theta(self) -> float:
        try:
            return rope.rope_spectrum(self.model).rope_theta
        except ValueError:
            return 10000.0

    def export_html(self, path: str | Path = "creamviz_rope.html") -> Path:
        """Write the current figures to one standalone HTML file (plotly.js embedded)."""
        skip = ("short_factor", "long_factor")
        params = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.param_names if n not in skip)
        section = Section(title="RoPE explorer", paragraphs=[params],
                          figures=[go.Figure(f) for f in self.figures.values()])
        return write_report(path, "creamviz — RoPE explorer", [section])
