"""Figures of RoPE interpolation per rotary pair and of the phases the trained distances exercise.

Data come from :mod:`creamviz.rope` (:class:`~creamviz.rope.RopeSpectrum`,
:class:`~creamviz.rope.PhaseCoverage`, :func:`~creamviz.rope.logit_decay`); the builders only
arrange them (no torch here).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.colors as px_colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from creamviz.figures.style import (
    LEGEND_BELOW,
    MARGIN_BELOW_PX,
    TEMPLATE,
    display_name,
    method_color,
    scaling_color,
)
from creamviz.rope import PhaseCoverage, RopeSpectrum

__all__ = ["fig_rope_wavelengths", "fig_rope_rotations", "fig_rope_decay", "fig_phase_coverage",
           "fig_distance_dimension", "fig_dimension_coverage", "fig_rope_summary", "REGION_COLORS"]

REGION_COLORS = {"kept": "#2ca02c", "partial": "#ff7f0e", "interpolated": "#1f77b4"}
REGION_LABELS = {"kept": "kept (extrapolates)", "partial": "partly interpolated",
                 "interpolated": "interpolated (÷ factor or more)"}
PRETRAINING_COLOR = "#222222"
UNSEEN_COLOR = "#d62728"


def _banded_scale(zmax: float, bands: list[tuple[str, str]]) -> tuple[list, float, list, list]:
    """A colorscale for values in [0, zmax] with labelled solid bands below 0 (no NaN in the data:
    heatmaps with NaN are slow to send to a widget). Band k (0 = lowest) is drawn at the value
    ``codes[k]``. Returns (colorscale, zmin, codes, colorbar tick values / labels as a pair list)."""
    step = zmax / 16
    codes = [-(len(bands) - k) * step for k in range(len(bands))]
    zmin = codes[0] - step / 2
    span = zmax - zmin

    def pos(z):
        return (z - zmin) / span

    scale = []
    for k, (_, color) in enumerate(bands):
        lo, hi = pos(codes[k] - step / 2), pos(codes[k] + step / 2)
        scale += [[lo, color], [hi, color]]
    viridis = px_colors.sequential.Viridis
    start = pos(-step / 2)
    scale += [[start + (1 - start) * j / (len(viridis) - 1), c] for j, c in enumerate(viridis)]
    scale[0][0], scale[-1][0] = 0.0, 1.0
    ticks = [(code, label) for code, (label, _) in zip(codes, bands, strict=True)]
    ticks += [(0.0, "0"), (zmax / 2, f"{zmax / 2:.2g}"), (zmax, f"{zmax:.2g}")]
    return scale, zmin, codes, ticks


def _check_spectrum(spectrum) -> RopeSpectrum:
    if not isinstance(spectrum, RopeSpectrum):
        raise ValueError(f"spectrum must be a creamviz.rope.RopeSpectrum, got {type(spectrum).__name__}")
    return spectrum


def _check_coverages(coverages) -> dict[str, PhaseCoverage]:
    if isinstance(coverages, PhaseCoverage):
        coverages = {coverages.method or "trained": coverages}
    if not isinstance(coverages, Mapping) or not coverages:
        raise ValueError(f"coverages must be a PhaseCoverage or a non-empty mapping name -> PhaseCoverage, "
                         f"got {type(coverages).__name__}")
    for name, cov in coverages.items():
        if not isinstance(cov, PhaseCoverage):
            raise ValueError(f"coverages[{name!r}] must be a creamviz.rope.PhaseCoverage, got {type(cov).__name__}")
    return {str(k): v for k, v in coverages.items()}


def _describe(spectrum: RopeSpectrum) -> str:
    text = spectrum.scaling if spectrum.scaling == "default" else f"{spectrum.scaling} ×{spectrum.factor:g}"
    if spectrum.seq_len is not None:
        text += f" at seq_len {spectrum.seq_len:,}"
    return f"{text}, θ = {spectrum.rope_theta:g}, d = {spectrum.rotary_dim}"


def _pairs(spectrum: RopeSpectrum) -> np.ndarray:
    return np.arange(len(spectrum.inv_freq))


def _wavelength_traces(fig, spectrum: RopeSpectrum, row=None, col=None, legend=True) -> None:
    where = {"row": row, "col": col} if row else {}
    i = _pairs(spectrum)
    fig.add_trace(go.Scatter(x=i, y=spectrum.base_wavelength, mode="lines", name="pre-trained wavelength 2π/θ",
                             line={"color": "#999999", "dash": "dot"}, showlegend=legend, legendgroup="base",
                             hovertemplate="pair %{x}<br>pre-trained wavelength %{y:,.1f}<extra></extra>"), **where)
    regions = spectrum.regions
    for region, color in REGION_COLORS.items():  # all three, empty or not: a stable trace layout
        mask = regions == region
        fig.add_trace(go.Scatter(
            x=i[mask], y=spectrum.wavelength[mask], mode="markers", name=REGION_LABELS[region],
            marker={"color": color, "size": 6}, showlegend=legend and bool(mask.any()), legendgroup=region,
            customdata=np.stack([spectrum.scale[mask], spectrum.interpolation[mask]], axis=1),
            hovertemplate="pair %{x}<br>wavelength %{y:,.1f} tokens<br>θ/θ' = %{customdata[0]:.3g}"
                          "<br>interpolated %{customdata[1]:.0%}<extra></extra>"), **where)
    lines = [[spectrum.train_len, f"N = {spectrum.train_len:,}", "#444444", "dash"],
             [spectrum.target_len, f"L = {spectrum.target_len:,}", "#444444", "solid"]]
    for label, value in spectrum.boundaries.items():
        same = [line for line in lines if np.isclose(line[0], value)]
        if same:  # e.g. YaRN's N / beta_slow with beta_slow = 1: one line, both labels
            same[0][1] += f" = {label.split(' (')[0]}"
        else:
            lines.append([value, label, "#aaaaaa", "dot"])
    for value, label, color, dash in lines:
        _reference_line(fig, [-0.5, len(i) - 0.5], [value, value], label, color, dash, where, "top right")


def _reference_line(fig, x, y, label, color, dash, where, position) -> None:
    """A labelled reference line drawn as a trace (shapes and annotations need log10 units on log axes)."""
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines+text", text=[label, ""], textposition=position,
                             textfont={"size": 10, "color": color}, line={"color": color, "dash": dash, "width": 1},
                             showlegend=False, hoverinfo="skip"), **where)


def fig_rope_wavelengths(spectrum: RopeSpectrum, *, title: str | None = None) -> go.Figure:
    """Wavelength ``2π/θ'_i`` (tokens per turn) of every rotary pair after scaling, coloured by what
    the scaling does to it (kept / partly interpolated / interpolated, from ``θ_i / θ'_i``), over
    the pre-trained wavelengths, with N and L (and YaRN's / Llama 3's published region edges)."""
    spectrum = _check_spectrum(spectrum)
    fig = go.Figure()
    _wavelength_traces(fig, spectrum)
    fig.update_layout(template=TEMPLATE, title=title or f"Wavelength per rotary pair ({_describe(spectrum)})",
                      xaxis={"title": "rotary pair i (high → low frequency)"},
                      yaxis={"title": "wavelength 2π/θ' (tokens, log)", "type": "log", "exponentformat": "power"},
                      legend=LEGEND_BELOW, height=430, margin={"t": 60, "b": MARGIN_BELOW_PX})
    return fig


def fig_rope_rotations(spectrum: RopeSpectrum, *, title: str | None = None) -> go.Figure:
    """Full turns each pair completes: within N at the pre-trained θ (what pre-training showed) and
    within L at the scaled θ' (what a length-L input needs). Above the pre-training curve, a pair
    turns further at L than it ever did; below 1 turn, it never completes a circle."""
    spectrum = _check_spectrum(spectrum)
    i = _pairs(spectrum)
    big_n, big_l = spectrum.train_len, spectrum.target_len
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=i, y=spectrum.rotations(big_n, base=True), mode="lines+markers",
                             name=f"pre-training: turns within N = {big_n:,} (θ)", marker={"size": 4},
                             line={"color": PRETRAINING_COLOR}))
    fig.add_trace(go.Scatter(x=i, y=spectrum.rotations(big_l), mode="lines+markers",
                             name=f"after scaling: turns within L = {big_l:,} (θ')", marker={"size": 4},
                             line={"color": REGION_COLORS["interpolated"]}))
    _reference_line(fig, [-0.5, len(i) - 0.5], [1, 1], "one turn", "#999999", "dot", {}, "bottom right")
    fig.update_layout(template=TEMPLATE, title=title or f"Rotations per rotary pair ({_describe(spectrum)})",
                      xaxis={"title": "rotary pair i"},
                      yaxis={"title": "full turns (log)", "type": "log", "exponentformat": "power"},
                      legend=LEGEND_BELOW, height=400, margin={"t": 60, "b": MARGIN_BELOW_PX})
    return fig


def _check_curves(curves) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty mapping name -> (distances, bound)")
    out = {}
    for name, pair in curves.items():
        try:
            x, y = (np.asarray(a, dtype=np.float64) for a in pair)
        except (TypeError, ValueError):
            raise ValueError(f"curves[{name!r}] must be a pair (distances, bound) of 1-D arrays") from None
        if x.ndim != 1 or x.shape != y.shape:
            raise ValueError(f"curves[{name!r}]: distances and bound must be 1-D of equal length, "
                             f"got {x.shape} and {y.shape}")
        out[str(name)] = (x, y)
    return out


def _decay_traces(fig, curves, row=None, col=None, legend=True) -> None:
    where = {"row": row, "col": col} if row else {}
    for name, (x, y) in curves.items():  # colour by scaling (same in every figure, whatever the order)
        color = PRETRAINING_COLOR if name.startswith("pre-trained") else scaling_color(name)
        keep = x > 0  # a log axis has no r = 0
        fig.add_trace(go.Scatter(x=x[keep], y=y[keep], mode="lines", name=name, showlegend=legend and x.size > 0,
                                 line={"color": color, "width": 1.2, "dash": "dot" if "attention factor" in name else "solid"},
                                 legendgroup=f"decay-{name}",
                                 hovertemplate="r %{x:,}<br>bound %{y:.3g}<extra>" + name + "</extra>"), **where)


def fig_rope_decay(curves: Mapping, *, train_len: int | None = None, target_len: int | None = None,
                   title: str | None = None) -> go.Figure:
    """RoFormer's long-term decay: the relative upper bound of the attention logit against the
    relative distance r (log axis: r = 0 is left out). ``curves``: name -> (distances, bound) from
    :func:`creamviz.rope.logit_decay` (empty arrays draw nothing); N and L drawn as vertical lines
    when given."""
    curves = _check_curves(curves)
    fig = go.Figure()
    _decay_traces(fig, curves)
    top = max((float(np.nanmax(y)) for _, y in curves.values() if y.size), default=1.0)
    for value, label in ((train_len, "N"), (target_len, "L")):
        if value:
            _reference_line(fig, [value, value], [top, 0], f"{label} = {value:,}", "#444444", "dash", {}, "top left")
    fig.update_layout(template=TEMPLATE, title=title or "Long-term decay of the RoPE logit bound",
                      xaxis={"title": "relative distance r (log)", "type": "log", "exponentformat": "power"},
                      yaxis={"title": "relative bound (2/d) Σ_j |S_j(r)|", "rangemode": "tozero"},
                      legend=LEGEND_BELOW, height=400, margin={"t": 60, "b": MARGIN_BELOW_PX})
    return fig


def _phase_centers(n_bins: int) -> np.ndarray:
    return (np.arange(n_bins) + 0.5) * (2 * np.pi / n_bins)


def fig_phase_coverage(coverage: PhaseCoverage, *, title: str | None = None) -> go.Figure:
    """Rotary pair × phase: colour = the cell's exercise rate (``PhaseCoverage.rate``: the mean,
    over the distances r < L whose angle ``r θ'_i`` is in the cell, of the fraction of samples that
    train r), red = a cell a length-L input needs that training never produced, blank = not needed
    at L (the pair does not reach that angle within L)."""
    if not isinstance(coverage, PhaseCoverage):
        raise ValueError(f"coverage must be a creamviz.rope.PhaseCoverage, got {type(coverage).__name__}")
    x, y = _phase_centers(coverage.n_bins), np.arange(coverage.needed.shape[0])
    rate = np.where(coverage.needed > 0, coverage.trained / np.maximum(coverage.needed, 1), 0.0)
    zmax = max(float(rate.max()), 1e-12)
    scale, zmin, (not_needed, never), ticks = _banded_scale(zmax, [("not needed", "#ffffff"),
                                                                   ("never", UNSEEN_COLOR)])
    z = np.where(coverage.needed == 0, not_needed, np.where(coverage.unseen, never, rate))
    fig = go.Figure()
    fig.add_trace(go.Heatmap(x=x, y=y, z=z, name="exercise rate", colorscale=scale, zmin=zmin, zmax=zmax,
                             colorbar={"title": "exercise<br>rate", "tickvals": [t for t, _ in ticks],
                                       "ticktext": [t for _, t in ticks]},
                             hovertemplate="pair %{y}<br>angle %{x:.2f} rad<br>%{z:.3g}<extra></extra>"))
    who = display_name(coverage.method) if coverage.method else "trained distances"
    fig.update_layout(template=TEMPLATE, height=430, margin={"t": 80},  # two title lines: fits 500 px
                      title=title or f"Which angles {who} exercises per rotary pair<br>"
                                     f"({coverage.unseen.sum():,} needed cells never seen, red)",
                      xaxis={"title": f"angle r·θ' mod 2π ({coverage.n_bins} bins)", "range": [0, 2 * np.pi],
                             "tickvals": np.pi * np.array([0, 0.5, 1, 1.5, 2]),
                             "ticktext": ["0", "π/2", "π", "3π/2", "2π"]},
                      yaxis={"title": "rotary pair i", "autorange": "reversed"})
    return fig


def _rate_traces(fig, coverage: PhaseCoverage, showscale: bool, where: dict, colorbar_y=None) -> None:
    edges = coverage.distance_edges
    x, y = (edges[:-1] + edges[1:] - 1) / 2, np.arange(coverage.rate_map.shape[0])
    # pre-training has no samples: its map is the share of distances on an angle it produced
    values = coverage.familiar if coverage.method == "pre-training" else coverage.rate_map
    scale, zmin, (never,), ticks = _banded_scale(1.0, [("never", UNSEEN_COLOR)])
    colorbar = {"title": "exercise<br>rate", "len": 0.9 if colorbar_y is None else 0.4,
                "tickvals": [t for t, _ in ticks], "ticktext": [t for _, t in ticks]}
    if colorbar_y is not None:
        colorbar["y"] = colorbar_y
    fig.add_trace(go.Heatmap(x=x, y=y, z=np.where(coverage.familiar == 0, never, values), zmin=zmin, zmax=1.0,
                             colorscale=scale, showscale=showscale, colorbar=colorbar, name=coverage.method,
                             customdata=coverage.familiar,
                             hovertemplate="r ≈ %{x:,.0f}<br>pair %{y}<br>exercise rate %{z:.3g} (negative: "
                                           "never)<br>%{customdata:.0%} of these distances on an exercised angle"
                                           "<extra>" + coverage.method + "</extra>"), **where)


def fig_distance_dimension(coverages, *, title: str | None = None) -> go.Figure:
    """Relative distance × rotary pair, one panel per method. Colour: the exercise rate of the angle
    a length-L input shows pair i at distance r (``PhaseCoverage.rate_map``: how often per sample
    fine-tuning produced that angle, 0 – 1); red: no distance of the bin lands on an angle the
    method's training ever produced. A ``"pre-training"`` entry has no samples: its panel shows
    ``PhaseCoverage.familiar`` (the share of the bin's distances on an angle pre-training produced)."""
    coverages = _check_coverages(coverages)
    names = list(coverages)
    titles = [f"{n} (1 = angle seen in pre-training, no per-sample rate)" if n == "pre-training" else display_name(n)
              for n in names]
    title = title or "Where a length-L input meets angles fine-tuning never produced"
    if len(names) == 1:  # one panel: no subplot grid (cheaper to redraw in an explorer)
        cov = coverages[names[0]]
        fig = go.Figure()
        _rate_traces(fig, cov, True, {})
        fig.add_vline(x=cov.train_len, line={"color": "#444444", "dash": "dash", "width": 1})
        fig.update_layout(template=TEMPLATE, height=400, margin={"t": 80}, title=f"{title}:<br>{titles[0]}",
                          xaxis={"title": "relative distance r (dashed: N)"},
                          yaxis={"title": "rotary pair i", "autorange": "reversed"})
        return fig
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.06 if len(names) > 1 else 0,
                        subplot_titles=titles)
    for k, name in enumerate(names):
        _rate_traces(fig, coverages[name], k == 0, {"row": k + 1, "col": 1})
        fig.update_yaxes(title_text="pair i", autorange="reversed", row=k + 1, col=1)
        fig.add_vline(x=coverages[name].train_len, line={"color": "#444444", "dash": "dash", "width": 1},
                      row=k + 1, col=1)
    fig.update_xaxes(title_text="relative distance r (dashed: N)", row=len(names), col=1)
    fig.update_layout(template=TEMPLATE, height=max(320, 230 * len(names)), margin={"t": 60}, title=title)
    return fig


def _coverage_traces(fig, coverages, row=None, col=None, legend=True) -> None:
    where = {"row": row, "col": col} if row else {}
    ordered = sorted(coverages.items(), key=lambda item: item[0] == "pre-training")  # pre-training on top
    for k, (name, cov) in enumerate(ordered):
        pre = name == "pre-training"
        fig.add_trace(go.Scatter(
            x=np.arange(len(cov.covered_fraction)), y=cov.covered_fraction, mode="lines+markers", name=display_name(name),
            showlegend=legend, legendgroup=f"cov-{name}", marker={"size": 4},
            line={"color": PRETRAINING_COLOR if pre else method_color(name, k), "dash": "dash" if pre else "solid",
                  "width": 2.5 if pre else 1.5},
            hovertemplate="pair %{x}<br>%{y:.1%} of the needed cells<extra>" + name + "</extra>"), **where)


def fig_dimension_coverage(coverages, *, title: str | None = None) -> go.Figure:
    """Per rotary pair: the fraction of the phase cells a length-L input needs that each method's
    trained distances exercise (pre-training: distances below N at the pre-trained θ)."""
    coverages = _check_coverages(coverages)
    first = next(iter(coverages.values()))
    fig = go.Figure()
    _coverage_traces(fig, coverages)
    fig.update_layout(template=TEMPLATE, height=400, margin={"t": 60, "b": MARGIN_BELOW_PX},
                      title=title or f"Needed angles each method exercises (N = {first.train_len:,}, "
                                     f"L = {first.target_len:,}, {first.n_bins} phase bins)",
                      xaxis={"title": "rotary pair i"},
                      yaxis={"title": "exercised / needed phase cells", "tickformat": ".0%", "range": [0, 1.05]},
                      legend=LEGEND_BELOW)
    return fig


def fig_rope_summary(spectrum: RopeSpectrum, decay: Mapping, coverages, *, familiar: str | None = None,
                     title: str | None = None) -> go.Figure:
    """One figure per scaling: wavelengths per pair (top left), needed angles exercised per pair and
    method (top right), the decay bound (bottom left) and the distance × pair map of one method
    (``familiar``, default the first non-pre-training coverage; bottom right)."""
    spectrum = _check_spectrum(spectrum)
    curves = _check_curves(decay)
    coverages = _check_coverages(coverages)
    trained = [k for k in coverages if k != "pre-training"] or list(coverages)
    familiar = familiar or trained[0]
    if familiar not in coverages:
        raise ValueError(f"familiar={familiar!r} is not among the coverages: {', '.join(coverages)}")
    fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.1, vertical_spacing=0.16,
                        subplot_titles=("wavelength 2π/θ' per rotary pair", "needed angles exercised, per pair",
                                        "decay of the logit bound", f"{familiar}: exercise rate, distance × pair"))
    _wavelength_traces(fig, spectrum, 1, 1)
    _coverage_traces(fig, coverages, 1, 2)
    _decay_traces(fig, curves, 2, 1)
    top = max(float(np.nanmax(y)) for _, y in curves.values())
    for value, label in ((spectrum.train_len, "N"), (spectrum.target_len, "L")):
        _reference_line(fig, [value, value], [top, 0], label, "#444444", "dash", {"row": 2, "col": 1}, "top left")
    _rate_traces(fig, coverages[familiar], True, {"row": 2, "col": 2}, colorbar_y=0.2)
    fig.add_vline(x=spectrum.train_len, line={"color": "#444444", "dash": "dash", "width": 1}, row=2, col=2)
    fig.update_yaxes(type="log", exponentformat="power", title_text="tokens", row=1, col=1)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.05], row=1, col=2)
    fig.update_xaxes(type="log", exponentformat="power", title_text="relative distance r", row=2, col=1)
    fig.update_yaxes(autorange="reversed", title_text="pair i", row=2, col=2)
    fig.update_xaxes(title_text="rotary pair i", row=1, col=1)
    fig.update_xaxes(title_text="rotary pair i", row=1, col=2)
    fig.update_xaxes(title_text="relative distance r", row=2, col=2)
    fig.update_layout(template=TEMPLATE, height=760, margin={"t": 80, "b": MARGIN_BELOW_PX},  # width: the page's
                      title=title or f"{_describe(spectrum)}: N = {spectrum.train_len:,}, L = {spectrum.target_len:,}",
                      legend=LEGEND_BELOW)
    return fig
