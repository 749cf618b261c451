"""RopeExplorer driven headless: controls, state, figures, inline errors and the sampler link."""

import html

import numpy as np
import plotly.graph_objects as go
import pytest

from creamviz import figures as F
from creamviz import rope
from creamviz.widgets import RopeExplorer, SamplerExplorer, build_sampler, rope_figures

SMALL = dict(model="tiny", train_len=256, target_len=2048, n_samples=200)


@pytest.fixture(scope="module")
def explorer():
    ex = RopeExplorer(**SMALL)
    assert ex.widget is not None  # build the controls
    return ex


def test_initial_state(explorer):
    assert explorer.error == ""
    assert set(explorer.figures) == {"wavelengths", "decay", "phase", "distance_dimension"}
    assert all(type(f) is go.Figure for f in explorer.figures.values())  # shown by Outputs: responsive width
    want = rope.rope_spectrum("tiny", "yarn", 8.0, train_len=256, target_len=2048, beta_fast=32.0, beta_slow=1.0)
    np.testing.assert_array_equal(explorer.spectrum.inv_freq, want.inv_freq)
    assert explorer.controls["factor_auto"].value and explorer.controls["factor"].value == 8.0
    assert explorer.controls["rope_theta"].value == pytest.approx(10000.0)  # the model's base, greyed
    assert explorer.figures["distance_dimension"].data[0].name == "cream"
    for fig in explorer.figures.values():  # heatmaps carry no NaN (sent as numbers)
        for trace in fig.data:
            if trace.type == "heatmap":
                assert np.isfinite(np.asarray(trace.z, dtype=float)).all()


def test_controls_update_state_and_figures(explorer):
    before = explorer.updates
    explorer.controls["scaling"].value = "linear"
    assert explorer.scaling == "linear" and explorer.error == "" and explorer.updates == before + 1
    np.testing.assert_allclose(explorer.spectrum.scale, 8.0, rtol=1e-6)
    wl = explorer.figures["wavelengths"]
    marker = next(t for t in wl.data if t.mode == "markers" and t.marker.color == F.REGION_COLORS["interpolated"])
    np.testing.assert_allclose(marker.y, explorer.spectrum.wavelength)
    explorer.controls["factor_auto"].value = False
    explorer.controls["factor"].value = 16.0
    assert explorer.factor == 16.0
    np.testing.assert_allclose(explorer.spectrum.scale, 16.0, rtol=1e-6)
    explorer.controls["factor_auto"].value = True
    assert explorer.factor is None and explorer.spectrum.factor == 8.0
    explorer.controls["scaling"].value = "yarn"
    explorer.controls["beta_fast"].value = 8.0
    assert explorer.spectrum.boundaries == {"N/β_fast (β_fast = 8)": 32.0, "N/β_slow (β_slow = 1)": 256.0}
    explorer.controls["rope_theta_auto"].value = False
    explorer.controls["rope_theta"].value = 500.0
    assert explorer.spectrum.rope_theta == pytest.approx(500.0)
    explorer.set_params(rope_theta=None, beta_fast=32.0)
    assert explorer.controls["rope_theta_auto"].value and explorer.spectrum.rope_theta == 10000.0
    wavelengths = [list(t.y) for t in explorer.figures["wavelengths"].data]
    updates = explorer.updates
    explorer.controls["method"].value = "pose"  # the sampler only: the scaling's figures stay as they are
    assert explorer.figures["distance_dimension"].data[0].name == "pose" and explorer.updates == updates + 1
    assert [list(t.y) for t in explorer.figures["wavelengths"].data] == wavelengths
    assert explorer.last_update_s < 5  # generous: the 1 s target is measured in the browser test


def test_plain_call_equals_widget(explorer):
    explorer.set_params(scaling="dynamic", method="cream")
    spec = rope.rope_spectrum("tiny", "dynamic", 8.0, train_len=256, target_len=2048)
    np.testing.assert_array_equal(explorer.spectrum.inv_freq, spec.inv_freq)
    figs = rope_figures(spec, rope.sampler_distance_frequency(build_sampler("cream", 256, 2048), 200, 0), "cream")
    assert set(figs) == set(explorer.figures)
    for name, fig in figs.items():
        widget = explorer.figures[name]
        assert [t.name for t in fig.data] == [t.name for t in widget.data]
        for a, b in zip(fig.data, widget.data, strict=True):
            for attr in ("x", "y", "z"):
                if getattr(a, attr, None) is not None:
                    np.testing.assert_allclose(np.asarray(getattr(a, attr), dtype=float),
                                               np.asarray(getattr(b, attr), dtype=float))
    with pytest.raises(ValueError, match="unknown figure"):
        rope_figures(spec, None, "cream", names=("rotations",))
    explorer.set_params(seq_len=256)  # dynamic at N: no change
    np.testing.assert_allclose(explorer.spectrum.scale, 1.0, rtol=1e-6)
    explorer.set_params(seq_len=None, scaling="yarn")


@pytest.mark.parametrize(("params", "match"), [
    (dict(target_len=200), "target_len=200 is out of range"),
    (dict(scaling="longrope"), "short_factor must be 16 positive"),
    (dict(beta_fast=0.5), "beta_fast=0.5 must exceed beta_slow=1"),
    (dict(n_bins=2), "n_bins=2 is out of range"),
    (dict(model="no/such/dir"), "model='no/such/dir'"),
    (dict(factor=0.5), "factor=0.5"),  # the slider shows 0.5 as set: nothing is clamped
    (dict(factor=float("nan")), "factor=nan"),
    (dict(rope_theta=float("inf")), "rope_theta=inf is out of range"),
    (dict(beta_slow=float("nan")), "beta_slow=nan is out of range"),
    (dict(seq_len=-5, scaling="dynamic"), "seq_len=-5 is out of range: valid is an integer >= 1"),
    (dict(method="nope"), "method='nope' is not a registered sampler"),
    (dict(n_samples=0), "n_samples=0"),
    (dict(method="cream", target_len=2000), "multiple of train_len"),
])
def test_invalid_values_show_inline_error(explorer, params, match):
    explorer.set_params(scaling="yarn", method="cream", **{k: v for k, v in SMALL.items() if k != "n_samples"},
                        n_samples=200, factor=None, beta_fast=32.0, beta_slow=1.0, rope_theta=None, seq_len=None,
                        n_bins=64)
    assert explorer.error == ""
    kept = [list(t.y) for t in explorer.figures["wavelengths"].data]
    updates = explorer.updates
    assert not explorer.set_params(**params)
    assert match in explorer.error, explorer.error
    assert explorer.updates == updates
    assert [list(t.y) for t in explorer.figures["wavelengths"].data] == kept
    assert html.escape(match.split("=")[0]) in explorer.error_html.value  # shown inline
    assert "last valid figures" in explorer.error_html.value


def test_invalid_at_construction_is_reported_not_raised():
    ex = RopeExplorer(**SMALL, factor=0.5)  # no widget built: nothing clamps the value
    assert "factor=0.5 must be a number >= 1" in ex.error and ex.spectrum is None
    with pytest.raises(ValueError, match="unknown parameter"):
        RopeExplorer(scale="yarn")


def test_longrope_from_code():
    ex = RopeExplorer(**SMALL, scaling="longrope", short_factor=[1.0] * 16, long_factor=list(np.linspace(1, 8, 16)))
    assert ex.error == ""
    np.testing.assert_allclose(ex.spectrum.scale, np.linspace(1, 8, 16), rtol=1e-5)


def test_link_sampler_both_ways():
    sampler = SamplerExplorer(train_len=256, target_len=1024, n_samples=500)
    ex = RopeExplorer(**SMALL)
    ex.link_sampler(sampler)
    assert (ex.train_len, ex.target_len, ex.method) == (256, 1024, "cream")  # the sampler's values win
    assert ex.spectrum.target_len == 1024 and ex.error == ""
    sampler.set_params(method="pose", target_len=2048)
    assert (ex.method, ex.target_len) == ("pose", 2048) and ex.spectrum.target_len == 2048
    ex.set_params(train_len=512)
    assert sampler.train_len == 512 and ex.spectrum.train_len == 512 and ex.error == ""
    sampler.set_params(sigma=1.5, method="cream")
    assert ex.sigma == 1.5 and ex.error == ""
    ex.unlink_sampler()
    sampler.set_params(target_len=4096)
    assert ex.target_len == 2048
    with pytest.raises(ValueError, match="SamplerExplorer"):
        ex.link_sampler(object())


def test_export_html(explorer, tmp_path):
    path = explorer.export_html(tmp_path / "rope.html")
    text = path.read_text()
    assert "RoPE explorer" in text and "plotly" in text.lower()
