"""Position samplers: structure, fidelity to the official recipe, reproducibility, bad input."""

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from creamviz.samplers import (
    CONTINUITY,
    RELATIVITY,
    SAMPLERS,
    ContiguousSampler,
    CreamSampler,
    PoseSampler,
    RandPosSampler,
    Segments,
    make_sampler,
)


def assert_valid_ids(ids: np.ndarray, train_len: int, target_len: int) -> None:
    assert ids.dtype == np.int64
    assert ids.shape[1] == train_len
    assert (np.diff(ids, axis=1) > 0).all(), "ids must be strictly increasing"
    assert ids.min() >= 0 and ids.max() < target_len


def slow_ids(seg: Segments) -> np.ndarray:
    """Per-sample construction straight from the definition (test oracle)."""
    rows = []
    for i in range(len(seg)):
        head = list(range(seg.head_len[i]))
        mid = list(range(seg.mid_start[i], seg.mid_end[i] + 1))
        tail = list(range(seg.target_len - seg.tail_len[i], seg.target_len))
        rows.append(head + mid + tail)
    return np.array(rows, dtype=np.int64)


# ----------------------------------------------------------------------------- properties
cream_params = st.builds(
    dict,
    train_len=st.integers(3, 300),
    factor=st.integers(2, 12),
    sigma=st.floats(0.05, 20),
    mu_shift=st.floats(-10, 10),
    p_continuity=st.floats(0, 1),
    middle=st.sampled_from(["reference", "truncnorm", "uniform"]),
    k_frac=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cream_params)
def test_cream_ids_are_valid_over_the_parameter_space(p):
    big_n, big_l = p["train_len"], p["train_len"] * p["factor"]
    k = 1 + int(p["k_frac"] * ((big_n - 1) // 2 - 1))
    s = CreamSampler(big_n, big_l, k=k, mu=1 + p["factor"] + p["mu_shift"], sigma=p["sigma"],
                     p_continuity=p["p_continuity"], middle=p["middle"])
    seg = s.sample(64, seed=p["seed"])
    ids = seg.position_ids()
    assert_valid_ids(ids, big_n, big_l)
    assert (ids[:, 0] == 0).all() and (ids[:, -1] == big_l - 1).all()
    assert (seg.head_len + seg.mid_len + seg.tail_len == big_n).all()
    assert (seg.mid_start >= seg.head_len).all() and (seg.mid_end < big_l - seg.tail_len).all()
    expected_edge = np.where(seg.branch == CONTINUITY, k, big_n // 3)
    assert (seg.head_len == expected_edge).all() and (seg.tail_len == expected_edge).all()
    np.testing.assert_array_equal(ids, slow_ids(seg))


@settings(deadline=None)
@given(st.integers(2, 200), st.floats(1.01, 9), st.sampled_from(["truncnorm", "uniform"]), st.integers(0, 2**31))
def test_non_integer_factor_variants(train_len, factor, middle, seed):
    big_l = max(train_len + 1, int(train_len * factor))
    if train_len < 3 or (4 * big_l) // train_len > (train_len - 1) // 2:
        k = 1 if train_len >= 3 else None
        if k is None:
            with pytest.raises(ValueError, match="train_len"):
                CreamSampler(train_len, big_l, middle=middle)
            return
    else:
        k = None
    ids = CreamSampler(train_len, big_l, k=k, middle=middle).position_ids(32, seed=seed)
    assert_valid_ids(ids, train_len, big_l)
    assert (ids[:, -1] == big_l - 1).all()


@settings(deadline=None)
@given(st.sampled_from(["pose", "randpos", "contiguous"]), st.integers(2, 300), st.integers(1, 600), st.integers(0, 2**31))
def test_peer_ids_are_valid(name, train_len, extra, seed):
    big_l = train_len + extra
    s = make_sampler(name, train_len=train_len, target_len=big_l)
    ids = s.position_ids(16, seed=seed)
    assert_valid_ids(ids, train_len, big_l)
    if s.has_segments:
        seg = s.sample(16, seed=seed)
        np.testing.assert_array_equal(seg.position_ids(), ids)
        np.testing.assert_array_equal(slow_ids(seg), ids)
        assert (seg.head_len + seg.mid_len + seg.tail_len == train_len).all()


def test_contiguous_is_plain_range():
    ids = ContiguousSampler(8, 40).position_ids(3, seed=0)
    np.testing.assert_array_equal(ids, np.tile(np.arange(8), (3, 1)))


def test_pose_layout():
    seg = PoseSampler(10, 50).sample(5000, seed=3)
    assert seg.head_len.min() == 1 and seg.head_len.max() == 5  # rt1 in 1 .. (N+1)//2
    skip = seg.mid_start - seg.head_len  # rt
    assert skip.min() == 0 and skip.max() == 40  # rt in 0 .. L-N
    assert (seg.mid_end == 10 + skip - 1).all() and (seg.tail_len == 0).all()


def test_randpos_is_uniform_subset():
    # every position equally likely: N/L each
    ids = RandPosSampler(5, 20).position_ids(20000, seed=1)
    assert_valid_ids(ids, 5, 20)
    freq = np.bincount(ids.ravel(), minlength=20) / 20000
    assert np.abs(freq - 5 / 20).max() < 0.02
    # all C(20,5) subsets reachable: pairs (first, last) spread
    assert len({tuple(r) for r in ids[:2000]}) > 1800
    with pytest.raises(ValueError, match="RandPos"):
        RandPosSampler(5, 20).sample(3)


def test_randpos_full_window_and_blocks():
    s = RandPosSampler(6, 7)
    s.block_elements = 14  # forces blocks of 2 rows
    ids = s.position_ids(5, seed=0)
    assert_valid_ids(ids, 6, 7)


# ----------------------------------------------------------------------------- the official recipe
def reference_one(rng: random.Random, big_n: int, big_l: int, k: int, mu: float, sigma: float, p_cont: float):
    """Straightforward per-sample transcription of the reference steps in docs/CREAM.md (section 4)."""
    factor = big_l // big_n
    edge = k if rng.random() < p_cont else big_n // 3
    u = rng.random()
    x = np.linspace(2, 2 * factor, 1000)
    cdf = stats.norm.cdf((x - mu) / sigma)
    rand_factor = int(np.interp(u, cdf, x))
    len_chunk = big_n - 2 * edge
    half = rand_factor / 2
    lo = int(edge + (len_chunk - 1) * half)
    hi = int(half * big_n - edge - 1)
    p_e = rng.randint(lo, hi)
    return edge, p_e - (len_chunk - 1), p_e, rand_factor


@pytest.mark.parametrize("big_n,factor", [(4096, 8), (256, 8), (300, 5)])
def test_reference_matches_per_sample_recipe(big_n, factor):
    big_l = big_n * factor
    s = CreamSampler(big_n, big_l)
    seg = s.sample(6000, seed=11)
    rng = random.Random(12)
    slow = np.array([reference_one(rng, big_n, big_l, s.k, s.mu, s.sigma, 0.5) for _ in range(6000)])
    for branch, edge in ((CONTINUITY, s.k), (RELATIVITY, big_n // 3)):
        fast_rows = seg.branch == branch
        slow_rows = slow[:, 0] == edge
        for col, field in ((1, "mid_start"), (2, "mid_end")):
            res = stats.ks_2samp(getattr(seg, field)[fast_rows], slow[slow_rows, col])
            assert res.pvalue > 1e-3, (branch, field, res)
    # the branch split is 50/50
    assert abs(seg.branch.mean() - 0.5) < 0.03


def test_reference_rand_factor_is_exactly_the_interp_of_u():
    s = CreamSampler(128, 1024, sigma=2.0)
    u = np.random.default_rng(0).random(20000)
    x, cdf = s.rand_factor_grid
    expected = np.array([int(np.interp(v, cdf, x)) for v in u])
    np.testing.assert_array_equal(s.rand_factor_from_u(u), expected)


@pytest.mark.parametrize("middle", ["reference", "truncnorm"])
@pytest.mark.parametrize("factor,mu,sigma", [(8, None, 3.0), (4, 2.0, 1.0), (16, 30.0, 4.0)])
def test_rand_factor_pmf_is_exact(middle, factor, mu, sigma):
    s = CreamSampler(128, 128 * factor, mu=mu, sigma=sigma, middle=middle, k=4)
    values, probs = s.rand_factor_pmf()
    assert values[0] == 2 and values[-1] == 2 * factor and probs.sum() == pytest.approx(1.0)
    # brute force on a fine, evenly spaced u grid (a Riemann sum of the step function)
    u = (np.arange(400_000) + 0.5) / 400_000
    counts = np.bincount(s.rand_factor_from_u(u), minlength=2 * factor + 1)[2:]
    np.testing.assert_allclose(counts / len(u), probs, atol=2e-5)
    if middle == "truncnorm":
        assert probs[-1] == 0.0  # no pile-up at the upper end
    elif mu is None:
        # clipped Gaussian: the mass above 2*factor piles up on the top value
        assert probs[-1] == pytest.approx(stats.norm.sf((2 * factor - s.mu) / sigma))


def test_rand_factor_two_gives_contiguous_positions():
    # a Gaussian far below the axis: rand_factor is always 2 -> ids 0..N-1 would be contiguous
    s = CreamSampler(30, 300, mu=-100, sigma=1.0, k=3)
    seg = s.sample(50, seed=0)
    assert (seg.rand_factor == 2).all()
    ids = seg.position_ids()
    np.testing.assert_array_equal(ids[:, : 30 - seg.tail_len[0]], np.tile(np.arange(30 - seg.tail_len[0]), (50, 1)))


def test_uniform_middle_covers_every_feasible_end():
    s = CreamSampler(9, 27, middle="uniform", k=2, p_continuity=1.0)
    seg = s.sample(20000, seed=5)
    # continuity: L_h = L_t = 2, L_m = 5: P_e in [2 + 5 - 1, 27 - 2 - 1] = [6, 24], uniformly
    counts = np.bincount(seg.mid_end, minlength=27)[6:25]
    assert seg.mid_end.min() == 6 and seg.mid_end.max() == 24
    assert stats.chisquare(counts).pvalue > 1e-3


def test_truncnorm_has_no_top_pileup_and_is_renormalised():
    ref = CreamSampler(128, 1024).sample(50000, seed=0)
    tn = CreamSampler(128, 1024, middle="truncnorm").sample(50000, seed=0)
    assert (ref.rand_factor == 16).mean() > 0.005
    assert (tn.rand_factor == 16).sum() == 0
    assert set(np.unique(tn.rand_factor)) <= set(range(2, 16))


def test_branch_block_shares_branch():
    s = CreamSampler(128, 1024, branch_block=100)
    seg = s.sample(1000, seed=0)
    blocks = seg.branch.reshape(10, 100)
    assert (blocks == blocks[:, :1]).all()
    assert 0 < seg.branch.mean() < 1


def test_p_continuity_extremes():
    assert (CreamSampler(128, 1024, p_continuity=1.0).sample(200, seed=0).branch == CONTINUITY).all()
    assert (CreamSampler(128, 1024, p_continuity=0.0).sample(200, seed=0).branch == RELATIVITY).all()


# ----------------------------------------------------------------------------- PoSE fidelity
def test_pose_matches_per_sample_recipe():
    big_n, big_l = 512, 4096
    seg = PoseSampler(big_n, big_l).sample(5000, seed=2)
    rng = random.Random(3)
    slow = []
    for _ in range(5000):
        rt1 = rng.randint(1, (big_n + 1) // 2)
        rt = rng.randint(0, big_l - big_n)
        slow.append((rt1, rt1 + rt))
    slow = np.array(slow)
    assert stats.ks_2samp(seg.head_len, slow[:, 0]).pvalue > 1e-3
    assert stats.ks_2samp(seg.mid_start, slow[:, 1]).pvalue > 1e-3


# ----------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_seeded_reproducibility(name):
    s = make_sampler(name, train_len=128, target_len=1024)
    a = s.position_ids(50, seed=7)
    np.testing.assert_array_equal(a, s.position_ids(50, seed=7))
    np.testing.assert_array_equal(a, s.position_ids(50, seed=np.random.default_rng(7)))
    if name in ("cream", "pose", "randpos"):
        assert not np.array_equal(a, s.position_ids(50, seed=8))


def test_known_values_are_stable_across_machines():
    """Four draws derived by hand from the recipe, then pinned (PCG64 is platform-independent).

    Draw order: 4 branch uniforms, 4 uniforms u for rand_factor, 4 uniforms v placing P_e.
    N = 4096, L = 32768: factor 8, k = 32, relativity L_h = 1365, mu = 9, sigma = 3.
    """
    import bisect
    import math

    rng = np.random.default_rng(0)
    b, u, v = rng.random(4), rng.random(4), rng.random(4)
    x = [2 + 14 * i / 999 for i in range(1000)]  # linspace(2, 16, 1000)
    cdf = [0.5 * (1 + math.erf((xi - 9) / (3 * math.sqrt(2)))) for xi in x]  # Phi((x - mu) / sigma)
    expect = []
    for bi, ui, vi in zip(b, u, v, strict=True):
        edge = 32 if bi < 0.5 else 4096 // 3
        j = bisect.bisect_right(cdf, ui)  # linear interpolation of u on (cdf, x)
        rf = int(x[j - 1] + (ui - cdf[j - 1]) * (x[j] - x[j - 1]) / (cdf[j] - cdf[j - 1]))
        chunk = 4096 - 2 * edge
        lo, hi = int(edge + (chunk - 1) * rf / 2), int(rf / 2 * 4096 - edge - 1)
        expect.append((int(bi >= 0.5), edge, rf, lo + int(vi * (hi - lo + 1))))
    seg = CreamSampler(4096, 32768).sample(4, seed=0)
    got = list(zip(seg.branch.tolist(), seg.head_len.tolist(), seg.rand_factor.tolist(), seg.mid_end.tolist(),
                   strict=True))
    assert got == expect
    assert got == [(1, 1365, 11, 15553), (0, 32, 13, 26568), (0, 32, 9, 18357), (0, 32, 10, 20187)]


# ----------------------------------------------------------------------------- registry and errors
def test_registry():
    assert set(SAMPLERS) == {"cream", "pose", "randpos", "contiguous"}
    s = make_sampler("cream", train_len=256, target_len=2048, sigma=2.0)
    assert isinstance(s, CreamSampler) and s.k == 32 and s.mu == 9.0 and s.sigma == 2.0
    assert make_sampler("cream", **s.params) == s
    with pytest.raises(ValueError, match="contiguous, cream, pose, randpos"):
        make_sampler("yarn", train_len=4, target_len=8)
    with pytest.raises(ValueError, match="accepted: .*train_len"):
        make_sampler("pose", train_len=4, target_len=8, k=3)


@pytest.mark.parametrize("kwargs,match", [
    ({"train_len": 256, "target_len": 256}, r"target_len=256 .*\[257, "),
    ({"train_len": 256, "target_len": 100}, "target_len"),
    ({"train_len": 256, "target_len": 1000}, r"multiple of train_len=256"),
    ({"train_len": 256, "target_len": 2048, "k": 128}, r"k=128 .*\[1, 127\]"),
    ({"train_len": 256, "target_len": 2048, "k": 0}, r"k=0"),
    ({"train_len": 256, "target_len": 2048, "sigma": 0}, r"sigma=0 .*\(0, inf\)"),
    ({"train_len": 256, "target_len": 2048, "sigma": -1.0}, "sigma"),
    ({"train_len": 256, "target_len": 2048, "sigma": float("nan")}, "sigma"),
    ({"train_len": 256, "target_len": 2048, "p_continuity": 1.5}, r"p_continuity=1.5 .*\[0, 1\]"),
    ({"train_len": 256, "target_len": 2048, "middle": "gauss"}, "reference, truncnorm, uniform"),
    ({"train_len": 256.0, "target_len": 2048}, "train_len must be an integer"),
    ({"train_len": "256", "target_len": 2048}, "train_len must be an integer"),
    ({"train_len": True, "target_len": 2048}, "train_len must be an integer"),
    ({"train_len": 2, "target_len": 20}, r"train_len=2 .*>= 3"),
    ({"train_len": 256, "target_len": 2048, "mu": "a"}, "mu must be a real"),
    ({"train_len": 256, "target_len": 2048, "branch_block": 0}, "branch_block"),
])
def test_bad_cream_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CreamSampler(**kwargs)


def test_default_k_too_large_for_small_window():
    # factor 8 -> k = 32 does not fit N = 40 ((N-1)//2 = 19): the message names k and the range
    with pytest.raises(ValueError, match=r"k=32 .*\[1, 19\] for train_len=40"):
        CreamSampler(40, 320)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("n", [0, -3, 2.5, "7", None])
def test_bad_n(name, n):
    s = make_sampler(name, train_len=128, target_len=1024)
    with pytest.raises(ValueError, match="n"):
        s.position_ids(n, seed=0)


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        CreamSampler(128, 1024).sample(3, seed=-1)
    with pytest.raises(ValueError, match="seed"):
        CreamSampler(128, 1024).sample(3, seed=1.5)


def test_segments_slicing_and_mid_len():
    seg = CreamSampler(128, 1024).sample(10, seed=0)
    assert len(seg[2:5]) == 3 and len(seg[3]) == 1 and len(seg[-1]) == 1
    np.testing.assert_array_equal(seg[seg.branch == 0].position_ids(), seg.position_ids()[seg.branch == 0])
    assert (seg.mid_len == 128 - 2 * seg.head_len).all()


def test_truncnorm_rand_factor_is_the_floor_of_the_quantile():
    s = CreamSampler(128, 1024, middle="truncnorm", sigma=2.5)
    values, probs = s.rand_factor_pmf()
    u = np.random.default_rng(1).random(50000)
    steps = np.cumsum(probs)[:-1]
    u = u[np.abs(u[:, None] - steps[None, :]).min(axis=1) > 1e-9]  # away from the steps (quantile round-off)
    np.testing.assert_array_equal(s.rand_factor_from_u(u), np.floor(s._truncnorm().ppf(u)).astype(np.int64))


@pytest.mark.parametrize("middle", ["reference"])
def test_rand_factor_table_is_exact_at_the_steps(middle):
    # u values right at, just below and just above every step of u -> rand_factor, plus random ones
    s = CreamSampler(128, 1024, middle=middle, sigma=2.5)
    values, probs = s.rand_factor_pmf()
    steps = np.cumsum(probs)[:-1]
    near = np.concatenate([steps, np.nextafter(steps, 0), np.nextafter(steps, 1),
                           steps - 1e-13, steps + 1e-13, [0.0, np.nextafter(1.0, 0)]])
    u = np.clip(np.concatenate([near, np.random.default_rng(1).random(50000)]), 0, np.nextafter(1.0, 0))
    np.testing.assert_array_equal(s.rand_factor_from_u(u), s._rand_factor_exact(u))
    assert s.rand_factor_from_u(u.reshape(2, -1)).shape == (2, len(u) // 2)
