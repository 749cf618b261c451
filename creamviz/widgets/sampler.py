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
from creamviz.figures.style import TEMPLATE, display_name
from creamviz.report import Section, write_report
from creamviz.samplers import (
    RANDPOS_MAX_IDS,
    SAMPLERS,
    Param,
    make_sampler,
    sampler_parameters,
)
from creamviz.widgets.base import ExplorerBase, show_auto

__all__ = ["SamplerExplorer", "sampler_figures", "build_sampler", "sampler_traits", "param_control",
           "nearest_study_arm", "ids_coverage_curve", "ids_distance_frequency"]

FIGURE_NAMES = ("strip", "segment_density", "middle_placement", "coverage")
MAX_RANDPOS_IDS = RANDPOS_MAX_IDS  # samplers without segments (RandPos, …): one cap, creamviz.samplers'
RANDPOS_KEYS_BUDGET = 1 << 22  # RandPos draws one random key per position of [0, L) per sample: samples x L
COVERAGE_FFT_BUDGET = 1 << 20  # samplers without segments: coverage samples x L (one FFT of 2L per sample)
COVERAGE_PAIRS_BUDGET = 1 << 24  # ... or coverage samples x N^2 when the pairs are counted directly
STRIP_MAX_MARKERS = 4096  # ids of the strip drawn one marker each; denser rows are drawn as ids per bin
STRIP_BINS = 512  # bins of [0, L) per row of a dense strip
MAX_MEMORY_BYTES = 256 << 20  # per-position arrays the explorer may allocate (about L <= 5.6 million)
STYLE = {"description_width": "110px"}


def build_sampler(method: str, train_len: int, target_len: int, **params):
    """The sampler a set of explorer parameters describes: ``params`` the method does not declare
    (another sampler's) are ignored, None means the declared default."""
    if not isinstance(method, str) or method not in SAMPLERS:
        raise ValueError(f"method={method!r} is not a registered sampler; valid: {', '.join(sorted(SAMPLERS))}")
    declared = {p.name for p in SAMPLERS[method].parameters}
    return make_sampler(method, train_len=train_len, target_len=target_len,
                        **{k: v for k, v in params.items() if k in declared})


def explorer_memory_bytes(target_len: int) -> int:
    """Bytes of the per-position arrays behind the explorer's figures (about six (L,) int64)."""
    return 6 * 8 * int(target_len)


def sampler_traits() -> dict[str, T.TraitType]:
    """One trait per registered sampler parameter (the union over :data:`SAMPLERS`), typed
    loosely: the sampler's declaration validates, so every value the user sets is kept as set."""
    out = {}
    for p in sampler_parameters().values():
        if p.kind is str:
            out[p.name] = T.Unicode(p.default, allow_none=p.default is None)
        elif p.kind is int:
            out[p.name] = T.Int(p.default, allow_none=p.default is None)
        else:
            out[p.name] = T.Float(p.default, allow_none=p.default is None)
    return out


def param_control(param: Param, train_len: int, target_len: int) -> W.Widget:
    """The control of one declared parameter: a dropdown for choices, a slider over the valid
    range for the current (N, L) (or the declared ``ui`` range where unbounded)."""
    desc = f"{param.symbol} ({param.name})" if param.symbol and param.symbol != param.name else param.name
    common = dict(description=desc, tooltip=param.help, style=STYLE,
                  layout=W.Layout(width="270px" if param.default is None else "340px"))
    if param.kind is str:
        return W.Dropdown(options=list(param.choices), **common)
    low, high, step = control_range(param, train_len, target_len)
    if param.kind is int:
        return W.IntSlider(min=low, max=high, step=step, continuous_update=False, **common)
    if param.log_scale:
        return W.FloatLogSlider(min=np.log10(low), max=np.log10(high), step=0.01, base=10,
                                continuous_update=False, **common)
    return W.FloatSlider(min=low, max=high, step=step, continuous_update=False, readout_format=".3g", **common)


def target_len_steps(method: str, middle: str, train_len: int, default_step: int, default_min: int) -> tuple[int, int]:
    """``(step, min)`` of the L slider: CREAM's reference middle needs L a multiple of N (L = m·N,
    m >= 2), so there the slider steps by N from 2N (a drag lands on valid L only); else the defaults."""
    if method == "cream" and middle == "reference" and isinstance(train_len, int) and train_len >= 1:
        return train_len, 2 * train_len
    return default_step, default_min


def control_range(param: Param, train_len: int, target_len: int) -> tuple:
    """``(min, max, step)`` of a parameter's slider at (N, L): the valid range where bounded,
    else the declared ``ui`` range."""
    ui = param.ui(train_len, target_len) if callable(param.ui) else param.ui
    low, high = param.bounds(train_len, target_len)
    ui_low, ui_high, step = ui if ui is not None else (low, high, 1)
    low = ui_low if low is None or param.low_open or (ui_low is not None and ui_low > low) else low
    high = ui_high if high is None else high
    if low is None or high is None:
        raise ValueError(f"parameter {param.name!r} needs bounds or a `ui` range to get a slider")
    return low, max(low, high), step


def sampler_figures(sampler, n_samples: int = 20_000, seed: int = 0, *, coverage_samples: int = 2000) -> dict[str, go.Figure]:
    """Every explorer figure for ``sampler``: strip, segment density, middle placement, coverage.

    ``n_samples`` samples feed the statistics (samplers without segments, such as RandPos: at most
    ``2^17 / N`` and ``2^22 / L`` of them, since their ids are materialised); the coverage curve uses
    the first ``coverage_samples`` (RandPos: see :func:`ids_coverage_curve`).
    """
    if sampler.has_segments:
        seg = sampler.sample(n_samples, seed=seed)
        pmf = {sampler.middle: sampler.rand_factor_pmf()} if hasattr(sampler, "rand_factor_pmf") and \
            getattr(sampler, "middle", "uniform") != "uniform" else None
        cov_input = seg[:coverage_samples]
        figs = {
            "strip": F.fig_strip(seg),
            "segment_density": F.fig_segment_density(segment_stats.segment_usage(seg)),
            "middle_placement": F.fig_middle_placement(segment_stats.middle_placement(seg), rand_factor_pmf=pmf),
        }
    else:  # no segments (RandPos, a user's free-form scheme): ids only
        n = max(1, min(n_samples, MAX_RANDPOS_IDS // sampler.train_len, RANDPOS_KEYS_BUDGET // sampler.target_len))
        ids = sampler.position_ids(n, seed=seed)
        usage = segment_stats.position_usage(ids, target_len=sampler.target_len)
        figs = {
            "strip": _ids_strip(ids[:12], sampler.target_len, display_name(sampler.name)),
            "segment_density": F.fig_position_usage({sampler.name: usage},
                                                    title=f"Where the ids land ({n:,} samples; {display_name(sampler.name)} has no segments)"),
            "middle_placement": _empty_figure(f"{display_name(sampler.name)} has no middle segment"),
        }
        cov_input = ids[: max(1, min(coverage_samples, n, 50))]
    curve = coverage.coverage_curve(cov_input, sampler.target_len) if sampler.has_segments else \
        ids_coverage_curve(cov_input, sampler.target_len)
    figs["coverage"] = F.fig_coverage_curves({sampler.name: curve},
                                             title=f"Relative distances covered after 1 … {len(curve):,} samples")
    return figs


def ids_coverage_curve(ids: np.ndarray, target_len: int) -> np.ndarray:
    """:func:`creamviz.coverage.coverage_curve` of raw ids (n, N) within a time budget: the pairs
    counted directly (N² per sample) while ``n · N² <= COVERAGE_PAIRS_BUDGET``, else the FFT path
    on the first ``COVERAGE_FFT_BUDGET / L`` samples (a 2L-point transform each; at N = 8192 one
    sample's 33 M pairs already cover all of [0, L) but its far end). The curve's length says how
    many samples it used."""
    n, big_n = ids.shape
    if n * big_n * big_n <= COVERAGE_PAIRS_BUDGET:
        first = np.full(target_len, n, dtype=np.int64)  # first sample whose D_r holds d
        for k in range(n - 1, -1, -1):  # last to first: the smallest index is written last
            row = ids[k].astype(np.int64)
            diffs = row[None, :] - row[:, None]  # (N, N)
            first[diffs[diffs >= 0]] = k
        return np.cumsum(np.bincount(first[first < n], minlength=n)) / target_len
    return coverage.coverage_curve(ids[: max(1, COVERAGE_FFT_BUDGET // target_len)], target_len)


def ids_distance_frequency(sampler, n_samples: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """Per distance ``d in [0, L)`` the fraction of samples whose ``D_r`` holds d, for a sampler
    without segments (RandPos), within the explorers' time budget: at most ``2^17 / N`` and
    ``2^22 / L`` samples; their pairs counted directly while ``n · N² <= COVERAGE_PAIRS_BUDGET``,
    else by FFT on at most ``COVERAGE_FFT_BUDGET / L`` of them. Returns ``(frequency (L,), samples used)``."""
    big_n, big_l = sampler.train_len, sampler.target_len
    n = max(1, min(n_samples, MAX_RANDPOS_IDS // big_n, RANDPOS_KEYS_BUDGET // big_l))
    if n * big_n * big_n > COVERAGE_PAIRS_BUDGET:
        n = max(1, min(n, COVERAGE_FFT_BUDGET // big_l))
        return coverage.distance_frequency(sampler.position_ids(n, seed=seed), big_l), n
    counts = np.zeros(big_l, dtype=np.int64)
    for row in sampler.position_ids(n, seed=seed).astype(np.int64):
        diffs = row[None, :] - row[:, None]  # (N, N)
        has = np.zeros(big_l, dtype=bool)
        has[diffs[diffs >= 0]] = True
        counts += has
    return counts / n, n


def _empty_figure(text: str) -> go.Figure:
    return F.fig_placeholder("", text)


def _ids_strip(ids: np.ndarray, target_len: int, label: str) -> go.Figure:
    """Rows of ids as one marker trace with numeric rows (string categories per point cost seconds
    to validate and send at N = 8192); past ``STRIP_MAX_MARKERS`` ids, a heatmap of the share of
    each row's ids per bin of [0, L) (``STRIP_BINS`` bins: what the markers would show, at a size
    a browser draws at once)."""
    if ids.size > STRIP_MAX_MARKERS:
        n_bins = min(STRIP_BINS, target_len)
        edges = np.linspace(0, target_len, n_bins + 1)
        counts = np.stack([np.histogram(row, bins=edges)[0] for row in ids])  # (rows, bins)
        share = counts / np.diff(edges)[None, :]  # fraction of the bin's positions that are ids
        fig = go.Figure(go.Heatmap(x=(edges[:-1] + edges[1:]) / 2, y=np.arange(len(ids)), z=share, zmin=0,
                                   colorscale=[[0, "#ffffff"], [1, "#9467bd"]], name="ids per position",
                                   colorbar={"title": {"text": "ids per<br>position", "side": "right"}, "len": 0.9},
                                   hovertemplate="sample #%{y}<br>positions ≈ %{x:,.0f}: %{z:.3f} of them are ids"
                                                 "<extra></extra>"))
        fig.update_layout(template=TEMPLATE, title=f"{len(ids)} {label} position vectors (N = {ids.shape[1]:,} ids each, "
                                                   f"share per bin of {target_len / n_bins:,.0f} positions)",
                          xaxis={"title": "position id", "range": [0, target_len]},
                          yaxis={"autorange": "reversed", "title": "sample", "tickvals": list(range(len(ids))),
                                 "ticktext": [f"#{i}" for i in range(len(ids))]})
        return fig
    rows = np.repeat(np.arange(len(ids)), ids.shape[1])  # (rows * N,)
    fig = go.Figure(go.Scattergl(x=ids.ravel().astype(np.float64), y=rows.astype(np.float64), mode="markers",
                                 showlegend=False, marker={"size": 3, "color": "#9467bd"}))
    fig.update_layout(template=TEMPLATE, title=f"{len(ids)} {label} position vectors",
                      xaxis={"title": "position id", "range": [0, target_len]},
                      yaxis={"autorange": "reversed", "title": "sample", "tickvals": list(range(len(ids))),
                             "ticktext": [f"#{i}" for i in range(len(ids))]})
    return fig


def nearest_study_arm(method: str, train_len: int, target_len: int, **params) -> dict:
    """The measured study arm nearest to these parameters: :func:`creamviz.study.nearest_arm`."""
    from creamviz.study import nearest_arm

    return nearest_arm(method, train_len, target_len, **params)


class SamplerExplorer(ExplorerBase):
    """State + view of a position sampler. Set any trait (from a control or from code) and every
    figure in ``.figures`` is rebuilt; invalid combinations set ``.error`` and keep the last
    valid figures.

    Traits: ``method`` (any registered sampler), ``train_len`` (N), ``target_len`` (L), one trait
    per registered sampler parameter (built from the samplers' :class:`~creamviz.samplers.Param`
    declarations; CREAM: ``k`` and ``mu`` (None = auto), ``sigma``, ``p_continuity``, ``middle``,
    ``branch_block``), ``n_samples``, ``seed``. Controls of parameters the chosen method does not
    declare are hidden; slider ranges follow the valid range at the current N and L.
    """

    method = T.Unicode("cream")
    train_len = T.Int(4096)
    target_len = T.Int(32768)
    n_samples = T.Int(20_000)
    seed = T.Int(0)
    study_note = T.Unicode("")  # the nearest measured study arm for these parameters (nearest_study_arm)

    figure_names = FIGURE_NAMES
    wide_figures = ("middle_placement",)  # two panels

    def __init__(self, **params) -> None:
        self.add_traits(**sampler_traits())
        self.sampler_param_names = tuple(sampler_parameters())
        self.param_names = ("method", "train_len", "target_len", *self.sampler_param_names, "n_samples", "seed")
        super().__init__(**params)

    def _compute(self) -> dict[str, go.Figure]:
        need = explorer_memory_bytes(self.target_len) if isinstance(self.target_len, int) else 0
        if need > MAX_MEMORY_BYTES:
            raise ValueError(f"target_len={self.target_len:,} needs about {need / 2**20:,.0f} MiB of per-position "
                             f"arrays for the figures; the explorer's limit is {MAX_MEMORY_BYTES / 2**20:.0f} MiB "
                             f"(L <= {MAX_MEMORY_BYTES // explorer_memory_bytes(1):,})")
        sampler = build_sampler(self.method, self.train_len, self.target_len,
                                **{n: getattr(self, n) for n in self.sampler_param_names})
        if isinstance(self.n_samples, bool) or self.n_samples < 1 or self.n_samples > 2_000_000:
            raise ValueError(f"n_samples={self.n_samples} is out of range: valid is [1, 2000000]")
        figs = sampler_figures(sampler, self.n_samples, self.seed)
        self.sampler = sampler
        self.study_note = nearest_study_arm(self.method, self.train_len, self.target_len, k=self.k, mu=self.mu,
                                            sigma=self.sigma, p_continuity=self.p_continuity,
                                            middle=self.middle)["text"]
        return figs

    def _extra_views(self) -> list[W.Widget]:
        return [*super()._extra_views(), self._trait_note("study_note", "Measured", escape=False)]

    # ---- controls ---------------------------------------------------------------------------
    def _controls(self) -> list[W.Widget]:
        layout = W.Layout(width="340px")
        c = {
            "method": W.Dropdown(options=list(SAMPLERS), description="method", style=STYLE, layout=layout),
            "train_len": W.IntSlider(min=16, max=8192, step=16, description="N (train_len)", style=STYLE,
                                     layout=layout, continuous_update=False),
            "target_len": W.IntSlider(min=32, max=262144, step=16, description="L (target_len)", style=STYLE,
                                      layout=layout, continuous_update=False),
        }
        tail = {
            "n_samples": W.IntSlider(min=100, max=200_000, step=100, description="samples", style=STYLE,
                                     layout=layout, continuous_update=False),
            "seed": W.IntText(description="seed", style=STYLE, layout=layout),
        }
        boxes = [self.bind(name, control) for name, control in c.items()]
        self.param_boxes: dict[str, W.Widget] = {}
        for name, param in sampler_parameters().items():
            self.param_boxes[name] = self._param_control(param)
        boxes += list(self.param_boxes.values())
        boxes += [self.bind(name, control) for name, control in tail.items()]
        self.observe(self._refresh_controls, ["method", "train_len", "target_len", *self.param_boxes])
        self._refresh_controls()
        return boxes

    def _window(self) -> tuple[int, int]:
        """(N, L) for control ranges: the state's when usable, else the last valid sampler's."""
        big_n, big_l = self.train_len, self.target_len
        if isinstance(big_n, int) and isinstance(big_l, int) and 3 <= big_n < big_l:
            return big_n, big_l
        last = getattr(self, "sampler", None)
        return (last.train_len, last.target_len) if last is not None else (4096, 32768)

    def _refresh_controls(self, _change=None) -> None:
        """Hide the controls the method does not declare; ranges follow validity at (N, L); an
        'auto' parameter's slider shows the default rule's value."""
        declared = {p.name for p in SAMPLERS[self.method].parameters} if self.method in SAMPLERS else set()
        big_n, big_l = self._window()
        self._step_target_len(big_n, default_step=16, default_min=32)
        for name, param in sampler_parameters().items():
            self.param_boxes[name].layout.display = "" if name in declared else "none"
            if param.kind is str:
                continue
            low, high, _ = control_range(param, big_n, big_l)
            if getattr(self, name) is not None:
                self._show_in_control(name, low, high)
                continue
            control, value = self.controls[name], param.default_for(big_n, big_l)
            self._syncing.add(name)
            try:  # auto: show the rule's value (the range widened to hold it)
                control.min, control.max = min(low, value), max(high, value)
                control.value = value
            finally:
                self._syncing.discard(name)
            show_auto(control, self.controls[f"{name}_note"], True, param.auto_text or "")

    def _step_target_len(self, big_n: int, *, default_step: int, default_min: int) -> None:
        """The L slider steps over valid L only (see :func:`target_len_steps`); the state is not touched."""
        control = self.controls.get("target_len")
        if control is None:
            return
        step, low = target_len_steps(self.method, self.middle, big_n, default_step, default_min)
        if (control.step, control.min) == (step, min(low, control.max)):
            return
        self._syncing.add("target_len")
        try:
            control.step = step
            control.min = min(low, control.max)
            control.tooltip = (f"steps of N = {step}: the reference middle needs L a multiple of N"
                                           if step != default_step else "")
        finally:
            self._syncing.discard("target_len")
        self._show_in_control("target_len")

    def _param_control(self, param: Param) -> W.Widget:
        """A declared parameter's control; one with a default rule gets an 'auto' checkbox
        (checked: trait None, the slider shows the rule's value and is disabled)."""
        control = param_control(param, *self._window())
        self.bind(param.name, control)
        if param.default is not None:
            return control
        name = param.name
        auto = W.Checkbox(value=getattr(self, name) is None, description="auto", indent=False,
                          layout=W.Layout(width="60px"), tooltip=f"default: {param.auto_text}")
        note = W.HTML(layout=W.Layout(width="auto"))  # "= 32 (auto: 4·L/N)" while auto
        self.controls[f"{name}_auto"] = auto
        self.controls[f"{name}_note"] = note

        key = f"{name}_auto"

        def show_state(_=None):  # state -> checkbox, without writing back
            self._syncing.add(key)
            try:
                auto.value = getattr(self, name) is None
                show_auto(control, note, auto.value, param.auto_text or "")
            finally:
                self._syncing.discard(key)

        def from_checkbox(change):
            if key not in self._syncing:
                setattr(self, name, None if change["new"] else control.value)

        auto.observe(from_checkbox, "value")
        self.observe(show_state, name)
        show_state()
        return W.HBox([control, note, auto], layout=W.Layout(align_items="center"))

    def export_html(self, path: str | Path = "creamviz_sampler.html") -> Path:
        """Write the current figures to one standalone HTML file (plotly.js embedded)."""
        params = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.param_names)
        section = Section(title="Sampler explorer", paragraphs=[params],
                          figures=[go.Figure(f) for f in self.figures.values()])
        return write_report(path, "creamviz — sampler explorer", [section])
