"""The study's statistics against hand-derived values, exhaustive enumeration and simulation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from creamviz import significance as S


def nested_bootstrap_variance(per_seed: np.ndarray, within_var: np.ndarray, n: int) -> float:
    """Hand-derived variance of the two-level bootstrap mean: one resampled seed's value X has
    Var X = Var_s(p_s) + E_s[within_s / n] (law of total variance); the mean of k of them, /k."""
    k = len(per_seed)
    return (np.mean((per_seed - per_seed.mean()) ** 2) + np.mean(within_var) / n) / k


def test_two_level_se_matches_the_derived_variance():
    rng = np.random.default_rng(0)
    p_true = np.array([0.2, 0.5, 0.6, 0.9])
    m = (rng.random((4, 40)) < p_true[:, None]).astype(float)
    res = S.two_level_ci(m, n_resamples=40_000, seed=1)
    p = m.mean(axis=1)
    expected = nested_bootstrap_variance(p, p * (1 - p), m.shape[1])
    assert res["se"] ** 2 == pytest.approx(expected, rel=0.04)
    assert res["mean"] == pytest.approx(m.mean()) and res["per_seed"] == pytest.approx(p.tolist())
    lo, hi = res["ci95"]
    assert lo < res["mean"] < hi


def test_two_level_bootstrap_against_exhaustive_enumeration():
    """k = 2 seeds, n = 3 prompts: enumerate every seed resample and every prompt resample within
    each chosen seed (all equally likely): the exact bootstrap distribution of the mean."""
    m = np.array([[1, 0, 0], [1, 1, 0]], dtype=float)
    k, n = m.shape
    values = []
    for seeds in itertools.product(range(k), repeat=k):
        for prompts in itertools.product(itertools.product(range(n), repeat=n), repeat=k):
            values.append(np.mean([m[s, list(ps)].mean() for s, ps in zip(seeds, prompts, strict=True)]))
    exact = np.array(values)
    res = S.two_level_ci(m, n_resamples=60_000, seed=2)
    assert res["se"] == pytest.approx(exact.std(), rel=0.03)
    lo, hi = res["ci95"]
    q_lo, q_hi = np.quantile(exact, [0.025, 0.975])
    assert abs(lo - q_lo) <= 1 / 6 + 1e-9 and abs(hi - q_hi) <= 1 / 6 + 1e-9  # support step 1/6


def test_paired_contrast_se_and_diff():
    rng = np.random.default_rng(3)
    a = (rng.random((6, 50)) < 0.6).astype(float)
    b = (rng.random((6, 50)) < 0.5).astype(float)
    res = S.paired_contrast(a, b, n_resamples=40_000, seed=4)
    d = a - b
    per_seed = d.mean(axis=1)
    within = d.var(axis=1)  # population variance of the paired differences within a seed
    assert res["diff"] == pytest.approx(a.mean() - b.mean())
    assert res["se"] ** 2 == pytest.approx(nested_bootstrap_variance(per_seed, within, 50), rel=0.04)
    assert res["per_seed_diff"] == pytest.approx(per_seed.tolist())
    assert res["n_seeds"] == 6 and res["n_prompts"] == 50


def test_permutation_p_value_equals_all_sign_flips():
    rng = np.random.default_rng(5)
    a = (rng.random((7, 20)) < 0.7).astype(float)
    b = (rng.random((7, 20)) < 0.5).astype(float)
    d = a.mean(axis=1) - b.mean(axis=1)
    observed = abs(d.mean())
    flips = np.array(list(itertools.product((-1, 1), repeat=7)))  # 128 relabellings within seed
    exact = np.mean(np.abs((flips * d).mean(axis=1)) >= observed - 1e-12)
    res = S.paired_contrast(a, b, n_resamples=10_000, seed=6)
    assert res["p_value"] == pytest.approx(exact)


def test_identical_arms_give_zero_difference_and_p_one():
    m = (np.random.default_rng(7).random((5, 30)) < 0.5).astype(float)
    res = S.paired_contrast(m, m.copy(), n_resamples=2000)
    assert res["diff"] == 0 and res["ci95"] == [0.0, 0.0] and res["p_value"] == 1.0


def test_mdd_gives_the_asked_power_by_simulation():
    sd, k = 0.08, 10
    mdd = S.min_detectable_difference(sd, k)
    sims = np.random.default_rng(8).normal(mdd, sd, size=(40_000, k))
    rejected = stats.ttest_1samp(sims, 0.0, axis=1).pvalue < 0.05
    assert rejected.mean() == pytest.approx(0.80, abs=0.01)
    assert S.power_paired(0.0, sd, k) == pytest.approx(0.05, abs=1e-9)  # size of the test


def test_mdd_large_k_matches_the_normal_formula():
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)  # 1.95996 + 0.84162
    assert S.min_detectable_difference(1.0, 10_000) == pytest.approx(z / 100, rel=2e-3)
    assert S.min_detectable_difference(2.0, 20) == pytest.approx(2 * S.min_detectable_difference(1.0, 20))


def test_holm_by_hand():
    adj = S.holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adj == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
    assert S.holm({"x": 0.6, "y": 0.7}) == pytest.approx({"x": 1.0, "y": 1.0})


def test_variance_parts_by_hand():
    m = np.zeros((2, 10))
    m[0, :4] = 1  # p = 0.4
    m[1, :8] = 1  # p = 0.8
    parts = S.variance_parts(m)
    total = np.var([0.4, 0.8], ddof=1)  # 0.08
    prompt = (0.4 * 0.6 + 0.8 * 0.2) / 2 / 10  # 0.02
    assert parts["sd_total"] ** 2 == pytest.approx(total)
    assert parts["sd_prompt"] ** 2 == pytest.approx(prompt)
    assert parts["sd_seed"] ** 2 == pytest.approx(total - prompt)


def test_bad_inputs():
    with pytest.raises(ValueError, match="0/1"):
        S.two_level_ci([[0.5, 1.0]])
    with pytest.raises(ValueError, match="shape"):
        S.paired_contrast(np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(ValueError, match=">= 2 seeds"):
        S.paired_contrast(np.ones((1, 4)), np.ones((1, 4)))
    with pytest.raises(ValueError, match="2-D"):
        S.two_level_ci([1, 0, 1])


def _table(acc: dict[str, list[float]], n: int = 20):
    """A record table with per-seed accuracies exactly as given (prompts 0..n-1 at depth 0.5)."""
    import pandas as pd

    rows = []
    for arm, per_seed in acc.items():
        for s, p in enumerate(per_seed):
            for j in range(n):
                rows.append({"arm": arm, "seed": s, "set": "kv", "prompt": j, "depth": 0.5,
                             "correct": int(j < round(p * n)), "generated": ""})
    return pd.DataFrame(rows)


def test_summarize_schema_and_values():
    df = _table({"cream": [0.5, 0.6, 0.7], "pose": [0.4, 0.5, 0.5], "contiguous": [0.3, 0.3, 0.4]})
    arms = {"cream": {"params": {"sampler": "cream"}, "label": "CREAM"}, "pose": {"params": {"sampler": "pose"}, "label": "PoSE"},
            "contiguous": {"params": {"sampler": "contiguous"}, "label": "contiguous"}}
    s = S.summarize(df, {"note": "test"}, arms, n_resamples=2000)
    assert set(s) >= {"config", "arms", "contrasts"} and s["config"] == {"note": "test"}
    cream = s["arms"]["cream"]
    assert set(cream) >= {"params", "seeds", "middle_acc", "mean", "ci95"}
    assert cream["seeds"] == [0, 1, 2] and cream["middle_acc"] == pytest.approx([0.5, 0.6, 0.7])
    assert cream["mean"] == pytest.approx(0.6) and cream["params"]["sampler"] == "cream"
    c = s["contrasts"]["cream-vs-pose"]
    assert set(c) >= {"diff", "ci95", "p_value"}
    assert c["diff"] == pytest.approx(np.mean([0.1, 0.1, 0.2]))
    assert "contiguous-vs-cream" in s["contrasts"] and "p_holm" in s["contrasts"]["contiguous-vs-cream"]
    assert s["verdict"].startswith("CREAM − PoSE") and "95 % CI" in s["verdict"]
    assert s["holm_family"] == ["contiguous-vs-cream"]


def test_summarize_one_seed_has_no_nan():
    """One seed: no contrast, no seed variance; the summary is strict JSON (None, never NaN)."""
    import json

    arms = {"cream": {"params": {}, "label": "CREAM"}, "pose": {"params": {}, "label": "PoSE"}}
    s = S.summarize(_table({"cream": [0.5], "pose": [0.4]}), {}, arms, n_resamples=1000)
    json.dumps(s, allow_nan=False)
    assert s["contrasts"] == {} and s["arms"]["cream"]["variance"]["sd_seed"] is None
    assert "not measured" in s["verdict"]


@pytest.mark.parametrize("k", [1, 2, 5, 8, 11])
def test_sign_flip_p_equals_brute_force(k):
    """Meet in the middle against listing every one of the 2^k sign patterns."""
    rng = np.random.default_rng(k)
    for _ in range(5):
        x = rng.integers(-30, 31, size=k)
        flips = np.array(list(itertools.product((-1, 1), repeat=k)))
        brute = np.mean(np.abs(flips @ x) >= abs(x.sum()))
        assert S.sign_flip_p(x) == pytest.approx(brute, abs=1e-15)
    assert S.sign_flip_p(np.zeros(k, dtype=int)) == 1.0


def test_sign_flip_p_large_k_by_symmetry():
    """30 equal positive differences: only the all-plus and all-minus patterns reach the observed sum."""
    assert S.sign_flip_p(np.full(30, 3)) == pytest.approx(2 / 2**30, rel=1e-12)
    with pytest.raises(ValueError, match="integers"):
        S.sign_flip_p([0.5, 1.0])
    with pytest.raises(ValueError, match="finite"):
        S.sign_flip_p([1.0, float("nan")])


def test_holm_refuses_nan_and_out_of_range():
    for bad in (float("nan"), -0.1, 1.5):
        with pytest.raises(ValueError, match="p_values"):
            S.holm({"a": 0.01, "b": bad})


def test_verdict_reads_the_ci_honestly():
    def one(lo, hi, diff=0.03, p=0.04):
        return S.verdict({"contrasts": {"a-vs-b": {"diff": diff, "ci95": [lo, hi], "p_value": p, "n_seeds": 30,
                                                   "n_prompts": 300}}}, "a-vs-b")
    edge = one(-0.0001, 0.059, p=0.045)
    assert "[0.0, +5.9]" in edge and "borderline" in edge and "no clear difference" not in edge and "−0.0" not in edge
    assert "excludes 0: a is higher" in one(0.01, 0.05)
    wide = one(-0.03, 0.06)
    assert "compatible with no difference" in wide and "[−3.0, +6.0]" in wide
    assert "not estimable" in one(float("nan"), 0.05)
    assert "not measured" in S.verdict({"contrasts": {}}, "a-vs-b")


def test_contrast_rows_use_display_names_and_rounding():
    summary = {"contrasts": {"cream-sigma1-vs-cream": {"arm": "cream-sigma1", "reference": "cream", "diff": 0.026999,
                                                        "ci95": [-0.00917, 0.0631], "p_value": 0.149992, "p_holm": 0.44997,
                                                        "n_seeds": 20, "mdd80": 0.0411}}}
    row = S.contrast_rows(summary, {"cream-sigma1": "CREAM σ = 1", "cream": "CREAM reference"})[0]
    assert row == {"contrast": "CREAM σ = 1 − CREAM reference", "difference (points)": 2.7, "95 % CI": "[−0.9, +6.3]",
                   "p": 0.15, "p (Holm)": 0.45, "paired seeds": 20, "MDD80 (points)": 4.1}
