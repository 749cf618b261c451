"""Hostile and boundary input on built explorers: every value is either shown as an inline error
with the last valid figures kept, or accepted; the state is never rewritten behind the user's back
(no slider clamp), nothing raises, nothing large is allocated before the refusal."""

from __future__ import annotations

import math
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creamviz.widgets import SamplerExplorer, TheoremExplorer
from creamviz.widgets.base import _representable

HOSTILE_FLOATS = [math.nan, math.inf, -math.inf, 1e308, -1e308]
HOSTILE_INTS = [0, -1, 10**6, 10**12]


def _snapshot(ex) -> dict:
    return {name: fig.to_json() for name, fig in ex.figures.items()}


def _same(a, b) -> bool:
    return (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or a == b


@pytest.fixture(scope="module")
def sampler_explorer():
    ex = SamplerExplorer(train_len=256, target_len=2048, n_samples=500)
    _ = ex.widget
    return ex


def _check_refused(ex, name, value, valid):
    """Set ``name = value`` on a valid explorer: error naming it, figures and state as described."""
    assert ex.set_params(**valid) and ex.error == ""
    before, updates = _snapshot(ex), ex.updates
    tracemalloc.start()
    try:
        setattr(ex, name, value)  # the path that used to raise RecursionError / "Broken link"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ex.error and name in ex.error, (name, value, ex.error)
    assert "creamviz-error" in ex.error_html.value and "last valid figures" in ex.error_html.value
    assert _same(getattr(ex, name), value)  # the state holds what was set ...
    control = ex.controls.get(name)
    if control is not None and _representable(control, value):
        assert control.value == value  # ... and the control shows it (range widened, not clamped)
    assert ex.updates == updates and _snapshot(ex) == before  # the last valid figures are kept
    assert peak < 64 << 20, f"{name}={value!r} allocated {peak / 2**20:.0f} MiB before refusing"
    assert ex.set_params(**valid) and ex.error == ""  # and it recovers


VALID_EXTREMES = {("mu", 1e308), ("mu", -1e308), ("sigma", 1e308), ("branch_block", 10**6),
                  ("branch_block", 10**12), ("seed", 0), ("seed", 10**6), ("seed", 10**12), ("n_samples", 10**6)}
FLOAT_CASES = [(n, v) for n in ("mu", "sigma", "p_continuity") for v in HOSTILE_FLOATS if (n, v) not in VALID_EXTREMES]
INT_CASES = [(n, v) for n in ("k", "train_len", "target_len", "n_samples", "branch_block", "seed")
             for v in HOSTILE_INTS if (n, v) not in VALID_EXTREMES]  # valid extremes: the property test


@pytest.mark.parametrize("name,value", FLOAT_CASES)
def test_sampler_explorer_float_traits(sampler_explorer, name, value):
    _check_refused(sampler_explorer, name, value, {"mu": None, "sigma": 3.0, "p_continuity": 0.5, "k": None})


@pytest.mark.parametrize("name,value", INT_CASES)
def test_sampler_explorer_int_traits(sampler_explorer, name, value):
    _check_refused(sampler_explorer, name, value,
                   {"train_len": 256, "target_len": 2048, "k": None, "n_samples": 500, "branch_block": 1, "seed": 0})


def test_slider_never_clamps_k(sampler_explorer):
    ex = sampler_explorer
    ex.set_params(train_len=256, target_len=2048, k=None)
    assert (ex.controls["k"].min, ex.controls["k"].max) == (1, 127)  # the valid range at N = 256
    for k in (0, 10**6):
        ex.k = k
        assert ex.k == k and ex.controls["k"].value == k and f"k={k}" in ex.error
    ex.k = 16
    assert ex.error == "" and (ex.controls["k"].min, ex.controls["k"].max) == (1, 127)
    ex.set_params(train_len=4096, target_len=32768)
    assert (ex.controls["k"].min, ex.controls["k"].max) == (1, 2047) and ex.k == 16
    ex.set_params(train_len=256, target_len=2048, k=None)


def test_bad_strings_and_types_are_reported(sampler_explorer):
    ex = sampler_explorer
    assert ex.set_params(method="bogus") is False and "method='bogus'" in ex.error
    assert ex.method == "bogus" and ex.controls["method"].value == "cream"  # the dropdown cannot show it
    assert ex.set_params(method="cream") and ex.error == ""
    assert ex.set_params(middle="gauss") is False and "middle='gauss'" in ex.error
    assert ex.set_params(middle="reference")
    assert ex.set_params(k=2.5) is False and "k=2.5 refused" in ex.error and ex.k is None
    assert ex.set_params(k=None) and ex.error == ""


def test_controls_that_do_not_apply_are_hidden(sampler_explorer):
    ex = sampler_explorer
    cream_only = ("k", "mu", "sigma", "p_continuity", "middle", "branch_block")
    for method in ("pose", "randpos", "contiguous"):
        ex.set_params(method=method)
        assert ex.error == ""
        assert all(ex.param_boxes[n].layout.display == "none" for n in cream_only), method
    ex.set_params(method="cream")
    assert all(ex.param_boxes[n].layout.display == "" for n in cream_only)
    assert "Python compute time" in ex.status_html.value


def test_huge_target_len_is_refused_before_allocating(sampler_explorer):
    ex = sampler_explorer
    tracemalloc.start()
    try:
        assert ex.set_params(target_len=10**8) is False
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "target_len=100,000,000" in ex.error and "MiB" in ex.error and peak < 64 << 20
    ex.set_params(target_len=2048)


@pytest.mark.parametrize("value", [0, -1, 10**8])
@pytest.mark.parametrize("name", ["train_len", "target_len", "head_len", "tail_len"])
def test_theorem_explorer_int_traits(name, value):
    ex = TheoremExplorer(train_len=12, target_len=60, head_len=2, tail_len=3)
    _ = ex.widget
    _check_refused(ex, name, value, {"train_len": 12, "target_len": 60, "head_len": 2, "tail_len": 3})


def test_theorem_explorer_l_slider_and_typed_box():
    ex = TheoremExplorer(train_len=64, target_len=1024, head_len=20, tail_len=20)
    _ = ex.widget
    assert ex.error == ""
    assert ex.controls["target_len"].min == 65 and ex.controls["target_len"].max == 1024
    ex.controls["target_len_text"].value = 3000  # beyond the slider: typed
    assert ex.target_len == 3000 and ex.error == "" and ex.controls["target_len"].value == 3000
    from creamviz.theorem import region_map

    ex.set_params(target_len=1024)
    full = region_map(64, 1024, head_lens=list(range(1, 64 - 20)), tail_len=20)  # L_h = 1 .. N - L_t - 1
    assert full.is_max.sum() > 4000  # thousands of maximal placements ...
    for name in ("region_map", "span_profile"):
        marks = [t for t in ex.figures[name].data if t.name in ("maximal", "conditions hold")]
        # ... drawn as outlines / bars: lines with a few hundred points, not a marker per placement
        assert len(marks) == 2 and all(t.mode == "lines" and 0 < len(t.x) <= 2000 for t in marks)
        assert all(t.mode != "lines+markers" for t in ex.figures[name].data if t.type == "scatter" and len(t.x) > 500)
    # every row with a maximal placement is inside the outline: a vertical edge spans it
    rows_with_max = set(full.head_lens[full.is_max.any(axis=1)].tolist())
    outline = next(t for t in ex.figures["region_map"].data if t.name == "maximal")
    xs, ys = list(outline.x), list(outline.y)
    spanned = set()
    for k in range(0, len(xs), 3):
        if xs[k] == xs[k + 1]:  # a vertical piece from y0 to y1 (cell edges at L_h +- 0.5)
            spanned |= set(range(round(min(ys[k], ys[k + 1]) + 0.5), round(max(ys[k], ys[k + 1]) - 0.5) + 1))
    assert spanned == rows_with_max


def test_launcher_float_traits_are_inline_errors():
    from creamviz.widgets import TrainingLauncher

    la = TrainingLauncher(target_len=2048)
    _ = la.widget
    for value in (math.nan, math.inf, -1.0):
        la.lr = value
        assert "lr=" in la.error and _same(la.lr, value) and la.launch() is False
    la.lr = 5e-4
    la.sigma = math.nan
    assert "sigma" in la.error
    la.sigma = 3.0
    assert la.error == ""


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(params=st.fixed_dictionaries({}, optional={
    "method": st.sampled_from(["cream", "pose", "randpos", "contiguous", "bogus"]),
    "train_len": st.one_of(st.integers(-2, 300), st.just(10**9)),
    "target_len": st.one_of(st.integers(-2, 3000), st.just(10**10)),
    "k": st.one_of(st.none(), st.integers(-2, 200)),
    "mu": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    "sigma": st.floats(allow_nan=True, allow_infinity=True),
    "p_continuity": st.floats(-1, 2),
    "middle": st.sampled_from(["reference", "truncnorm", "uniform", ""]),
}))
def test_any_parameter_combination_is_an_error_or_a_consistent_result(sampler_explorer, params):
    ex = sampler_explorer
    ex.set_params(method="cream", train_len=256, target_len=2048, k=None, mu=None, sigma=3.0, p_continuity=0.5,
                  middle="reference")
    before = _snapshot(ex)
    ok = ex.set_params(**params)  # never raises
    for name, value in params.items():
        assert _same(getattr(ex, name), value)  # the state is what was set
    if ok:
        assert ex.error == ""
        state = {k: getattr(ex, k) for k in ("train_len", "target_len")}
        assert {k: ex.sampler.params[k] for k in state} == state and ex.sampler.name == ex.method
        for name in ("k", "mu", "sigma", "p_continuity", "middle"):
            if ex.method == "cream" and getattr(ex, name) is not None:
                assert _same(ex.sampler.params[name], getattr(ex, name))
    else:
        assert ex.error and _snapshot(ex) == before


# --------------------------------------------------------------------------- second round
def test_rope_auto_factor_slider_shows_the_factor_used():
    """L / N = 16384 / 64 = 256 lies beyond the slider's initial range (64): the range widens so
    the disabled 'auto' slider shows what the spectrum uses, not a clamped 64."""
    from creamviz.widgets import RopeExplorer

    ex = RopeExplorer(model="tiny", train_len=64, target_len=16384, method="pose", n_samples=100)
    _ = ex.widget
    assert ex.factor is None and ex.spectrum.factor == 256.0
    assert ex.controls["factor"].value == 256.0 and ex.controls["factor"].disabled


@pytest.mark.parametrize("side", ["sampler", "rope"])
@pytest.mark.parametrize("name, value", [("sigma", math.nan), ("sigma", math.inf), ("mu", -math.inf),
                                         ("p_continuity", math.nan)])
def test_linked_explorers_refuse_non_finite_shared_values_and_keep_the_last(side, name, value):
    from creamviz.widgets import RopeExplorer

    sampler, rope = SamplerExplorer(n_samples=200), RopeExplorer(n_samples=200)
    rope.link_sampler(sampler)
    target = sampler if side == "sampler" else rope
    before = getattr(sampler, name)
    assert not target.set_params(**{name: value})
    assert f"{name}={value!r}" in target.error and "finite number" in target.error
    assert "Broken link" not in target.error
    assert _same(getattr(sampler, name), before) and _same(getattr(rope, name), before)
    assert target.set_params(**{name: 2.0 if name != "p_continuity" else 0.25})  # the link still works
    assert getattr(sampler, name) == getattr(rope, name)


def test_launcher_error_tells_the_present_state_after_a_refused_type():
    """A refused value after an earlier invalid one: the error says both (this call's refusal and the
    state's remaining problem); a later valid call clears it."""
    from creamviz.widgets import TrainingLauncher

    launcher = TrainingLauncher()
    _ = launcher.widget
    assert not launcher.set_params(steps=-5) and "steps=-5" in launcher.error
    assert not launcher.set_params(lr="abc")
    assert "lr='abc' refused" in launcher.error and "steps=-5" in launcher.error
    assert launcher.lr == 5e-4
    assert launcher.set_params(steps=10) and launcher.error == ""
    assert not launcher.set_params(lr="abc") and "steps" not in launcher.error  # nothing stale
    assert launcher.set_params(lr=1e-3) and launcher.error == ""



@pytest.mark.parametrize("train_len", [0])
def test_rope_explorer_names_train_len_instead_of_dividing_by_it(train_len):
    from creamviz.widgets import RopeExplorer

    ex = RopeExplorer(n_samples=100)
    _ = ex.widget
    before = _snapshot(ex)
    assert not ex.set_params(train_len=train_len)
    assert f"train_len={train_len}" in ex.error and "ZeroDivision" not in ex.error
    assert _snapshot(ex) == before
