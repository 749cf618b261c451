"""RoPE figure builders: the traces carry exactly the library's numbers."""

import numpy as np
import plotly.graph_objects as go
import pytest

from creamviz import figures as F
from creamviz import rope
from creamviz.samplers import make_sampler

N, L = 256, 2048


@pytest.fixture(scope="module")
def view():
    spec = rope.rope_spectrum("tiny", "yarn", 8)
    freqs = {m: rope.sampler_distance_frequency(make_sampler(m, train_len=N, target_len=L), 200, seed=0)
             for m in ("cream", "contiguous")}
    return rope.rope_overview(spec, ("cream", "contiguous"), frequencies=freqs, n_bins=32, n_distance_bins=64)


def test_wavelengths(view):
    spec = view.spectrum
    fig = F.fig_rope_wavelengths(spec)
    assert isinstance(fig, go.Figure) and fig.layout.yaxis.type == "log"
    markers = [t for t in fig.data if t.mode == "markers"]
    assert {t.marker.color for t in markers} == {F.REGION_COLORS[r] for r in set(spec.regions)}
    xs = np.concatenate([t.x for t in markers])
    ys = np.concatenate([t.y for t in markers])
    np.testing.assert_allclose(ys[np.argsort(xs)], spec.wavelength)
    base = next(t for t in fig.data if t.name.startswith("pre-trained"))
    np.testing.assert_allclose(base.y, spec.base_wavelength)
    labels = {t.text[0] for t in fig.data if t.mode == "lines+text"}
    assert f"N = {N:,} = N/β_slow" in labels and f"L = {L:,}" in labels
    assert any(label.startswith("N/β_fast") for label in labels)


def test_rotations_and_decay(view):
    spec = view.spectrum
    fig = F.fig_rope_rotations(spec)
    np.testing.assert_allclose(fig.data[0].y, spec.rotations(N, base=True))
    np.testing.assert_allclose(fig.data[1].y, spec.rotations(L))
    fig = F.fig_rope_decay(view.decay, train_len=N, target_len=L)
    curves = [t for t in fig.data if t.mode == "lines"]
    assert [t.name for t in curves] == list(view.decay)
    for trace, (x, y) in zip(curves, view.decay.values(), strict=True):
        np.testing.assert_allclose(trace.y, y[x > 0])
        np.testing.assert_allclose(trace.x, x[x > 0])
    with pytest.raises(ValueError, match="curves"):
        F.fig_rope_decay({})
    with pytest.raises(ValueError, match="equal length"):
        F.fig_rope_decay({"a": ([1, 2], [1.0])})


def test_phase_coverage_codes(view):
    cov = view.coverages["contiguous"]
    fig = F.fig_phase_coverage(cov)
    (heat,) = fig.data
    z = np.asarray(heat.z)
    assert np.isfinite(z).all()  # no NaN: widgets send it as is
    ticks = dict(zip(heat.colorbar.ticktext, heat.colorbar.tickvals, strict=True))
    assert np.all(z[cov.needed == 0] == ticks["not needed"])
    assert np.all(z[cov.unseen] == ticks["never"]) and cov.unseen.any()
    ok = cov.exercised & (cov.needed > 0)
    np.testing.assert_allclose(z[ok], cov.rate[ok])
    assert heat.zmin < ticks["not needed"] < ticks["never"] < 0 <= z[ok].min()


def test_distance_dimension_and_dimension_coverage(view):
    cov = view.coverages["contiguous"]
    one = F.fig_distance_dimension({"contiguous": cov})
    heat = one.data[0]
    z = np.asarray(heat.z)
    never = dict(zip(heat.colorbar.ticktext, heat.colorbar.tickvals, strict=True))["never"]
    np.testing.assert_allclose(z[cov.familiar > 0], cov.rate_map[cov.familiar > 0])
    assert np.all(z[cov.familiar == 0] == never) and (cov.familiar == 0).any()
    np.testing.assert_allclose(heat.x, (cov.distance_edges[:-1] + cov.distance_edges[1:] - 1) / 2)
    many = F.fig_distance_dimension(view.coverages)
    assert [a.text.split(" ")[0] for a in many.layout.annotations] == ["pre-training", "CREAM", "contiguous"]
    pre = next(t for t in many.data if t.name == "pre-training")
    np.testing.assert_allclose(pre.z, view.coverages["pre-training"].familiar)  # all seen here: no code
    fig = F.fig_dimension_coverage(view.coverages)
    assert [t.name for t in fig.data] == ["CREAM", "contiguous windows", "pre-training"]  # pre-training drawn last
    for trace in fig.data:
        np.testing.assert_allclose(trace.y, view.coverages[trace.legendgroup.removeprefix("cov-")].covered_fraction)
    with pytest.raises(ValueError, match="PhaseCoverage"):
        F.fig_dimension_coverage({"x": np.ones(3)})


def test_summary(view):
    fig = F.fig_rope_summary(view.spectrum, view.decay, view.coverages, familiar="cream")
    assert len(fig.layout.annotations) >= 4 and "cream" in fig.layout.annotations[3].text
    assert {t.xaxis for t in fig.data} == {"x", "x2", "x3", "x4"}
    with pytest.raises(ValueError, match="familiar='nope'"):
        F.fig_rope_summary(view.spectrum, view.decay, view.coverages, familiar="nope")
    with pytest.raises(ValueError, match="RopeSpectrum"):
        F.fig_rope_wavelengths({"inv_freq": [1.0]})
