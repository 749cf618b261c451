"""Hostile input, kept as tests: every accepted parameter gives a valid result, every refused one a
clear ValueError naming the parameter, and sizes are checked before anything large is allocated.

- hypothesis over the whole accepted parameter space of the samplers (extremes included): the output
  satisfies the invariants or the constructor refuses;
- a table of bad inputs per public function (the message must name the parameter);
- size limits: the call refuses quickly, before allocating, and says the estimate and the limit.
The training-side cases (non-finite loss, kill -9 and resume) live in tests/test_training.py.
"""

from __future__ import annotations

import math
import re
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from creamviz import coverage, samplers, segment_stats, theorem
from creamviz.samplers import (
    SAMPLERS,
    CreamSampler,
    PoseSampler,
    RandPosSampler,
    Segments,
    make_sampler,
)


def assert_valid(ids: np.ndarray, big_n: int, big_l: int) -> None:
    """The samplers' contract: (n, N) int64 rows, strictly increasing, inside [0, L)."""
    assert ids.dtype == np.int64 and ids.shape[1] == big_n
    assert (np.diff(ids, axis=1) > 0).all(), "ids must be strictly increasing"
    assert ids.min() >= 0 and ids.max() < big_l


def assert_valid_segments(seg: Segments) -> None:
    h, s, e, t = (np.asarray(a, dtype=np.int64) for a in (seg.head_len, seg.mid_start, seg.mid_end, seg.tail_len))
    m = e - s + 1
    assert (h >= 0).all() and (t >= 0).all() and (m >= 0).all()
    assert (h + m + t == seg.train_len).all()
    assert ((m == 0) | ((s >= h) & (e <= seg.target_len - t - 1))).all()


# --------------------------------------------------------------------------- samplers: whole space
finite = st.floats(allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0.0, max_value=1.7e308, exclude_min=True, allow_nan=False, allow_infinity=False)


@st.composite
def cream_configs(draw):
    middle = draw(st.sampled_from(samplers.MIDDLE_MODES))
    big_n = draw(st.one_of(st.integers(3, 40), st.integers(41, 5000)))
    if middle == "reference":  # L must be a multiple of N
        big_l = big_n * draw(st.one_of(st.integers(2, 64), st.integers(65, 2 * samplers.MAX_RAND_FACTOR_FACTOR)))
    elif middle == "truncnorm":
        big_l = draw(st.one_of(st.integers(big_n + 1, 64 * big_n), st.integers(big_n + 1, 2**40)))
    else:
        big_l = draw(st.one_of(st.integers(big_n + 1, 64 * big_n), st.integers(big_n + 1, 2**53 + 8)))
    params = {"middle": middle}
    k_mode = draw(st.sampled_from(["default", "valid", "valid", "valid", "any"]))
    if k_mode == "valid":
        params["k"] = draw(st.integers(1, max(1, (big_n - 1) // 2)))
    elif k_mode == "any":
        params["k"] = draw(st.one_of(st.integers(-2, (big_n - 1) // 2 + 2), st.integers(1, 10**9)))
    if draw(st.booleans()):
        params["mu"] = draw(st.one_of(finite, st.floats(-100, 200), st.sampled_from([-96.0, 2.0, 1e300, -1e300])))
    if draw(st.booleans()):
        params["sigma"] = draw(st.one_of(positive, st.floats(1e-9, 50), st.sampled_from([1e-6, 5e-324, 1e300])))
    if draw(st.booleans()):
        params["p_continuity"] = draw(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0])))
    if draw(st.booleans()):
        params["branch_block"] = draw(st.one_of(st.integers(1, 100), st.integers(1, 10**15)))
    return big_n, big_l, params


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cream_configs(), st.integers(1, 48), st.integers(0, 2**63 - 1))
def test_cream_whole_parameter_space_is_valid_or_refused(config, n, seed):
    big_n, big_l, params = config
    try:
        sampler = CreamSampler(big_n, big_l, **params)
    except ValueError as err:  # refused: the message names a parameter and a range
        assert re.search(r"train_len|target_len|k=|mu=|sigma=|p_continuity|branch_block|middle", str(err)), err
        event("refused")
        return
    event(f"accepted, middle={params['middle']}")
    seg = sampler.sample(n, seed=seed)
    assert_valid_segments(seg)
    ids = seg.position_ids()
    assert_valid(ids, big_n, big_l)
    assert (ids[:, 0] == 0).all() and (ids[:, -1] == big_l - 1).all()  # CREAM keeps both ends
    edge = np.where(seg.branch == samplers.CONTINUITY, sampler.k, big_n // 3)
    np.testing.assert_array_equal(seg.head_len, edge)
    if params["middle"] != "uniform":
        assert (seg.rand_factor >= 2).all() and (seg.rand_factor <= 2 * sampler.factor).all()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["pose", "randpos", "contiguous"]), st.integers(1, 3000),
       st.one_of(st.integers(1, 5000), st.integers(1, 2**53)), st.integers(1, 32), st.integers(0, 2**63 - 1))
def test_peers_whole_parameter_space_is_valid_or_refused(name, big_n, extra, n, seed):
    big_l = big_n + extra
    try:
        sampler = make_sampler(name, train_len=big_n, target_len=big_l)
        ids = sampler.position_ids(n, seed=seed)
    except ValueError as err:
        assert re.search(r"train_len|target_len|n \* target_len", str(err)), err
        event("refused")
        return
    event("accepted")
    assert_valid(ids, big_n, big_l)
    if sampler.has_segments:
        seg = sampler.sample(n, seed=seed)
        assert_valid_segments(seg)
        np.testing.assert_array_equal(seg.position_ids(), ids)


@pytest.mark.parametrize("params", [
    dict(train_len=256, target_len=2048, mu=-96.0, sigma=1e-6, middle="truncnorm"),  # all mass at rf = 2
    dict(train_len=256, target_len=2048, mu=1e6, sigma=1e-6, middle="truncnorm"),  # all mass at rf = 2f
    dict(train_len=256, target_len=2048, mu=9.0, sigma=1e-300, middle="truncnorm"),
    dict(train_len=256, target_len=2048, mu=-96.0, sigma=1e-6, middle="reference"),
    dict(train_len=256, target_len=2048, mu=9.0, sigma=1e300, middle="reference"),
    dict(train_len=256, target_len=2048, branch_block=10**15),
    dict(train_len=3, target_len=4, k=1, middle="uniform"),
    dict(train_len=4096, target_len=2**52, k=1, middle="uniform"),
])
def test_extreme_but_meaningful_parameters_are_accepted_and_valid(params):
    big_n, big_l = params["train_len"], params["target_len"]
    ids = make_sampler("cream", **params).position_ids(500, seed=0)
    assert_valid(ids, big_n, big_l)


def test_point_mass_truncnorm_puts_every_sample_at_the_end_nearest_mu():
    # all the mass at 2 (floor 2) or just below 2f = 16 (floor 15: truncnorm never reaches 2f itself)
    low = CreamSampler(256, 2048, mu=-96.0, sigma=1e-6, middle="truncnorm").sample(1000, seed=0)
    high = CreamSampler(256, 2048, mu=1e6, sigma=1e-6, middle="truncnorm").sample(1000, seed=0)
    assert (low.rand_factor == 2).all() and (high.rand_factor == 15).all()


# --------------------------------------------------------------------------- Segments built by hand
def test_segments_validate_hand_built_layouts():
    one = dict(branch=np.array([0]), train_len=6, target_len=20)
    ok = Segments(np.array([2]), np.array([10]), np.array([11]), np.array([2]), **one)
    np.testing.assert_array_equal(ok.position_ids(), [[0, 1, 10, 11, 18, 19]])
    bad = [  # (head_len, mid_start, mid_end, tail_len), the message
        ((3, 2, 3, 1), "overlaps"),  # middle starts inside the head
        ((1, 17, 19, 2), "overlaps"),  # middle runs into the tail
        ((2, 5, 6, 1), "add up to train_len=6"),
        ((-1, 0, 5, 1), "head_len must be >= 0"),
        ((2, 5, 2, 6), "mid_len"),  # P_e < P_s - 1
    ]
    for (h, s, e, t), match in bad:
        with pytest.raises(ValueError, match=match):
            Segments(np.array([h]), np.array([s]), np.array([e]), np.array([t]), **one)
    with pytest.raises(ValueError, match="target_len=5 is out of range"):  # L < N
        Segments(np.array([2]), np.array([2]), np.array([1]), np.array([4]), np.array([0]), 6, 5)
    with pytest.raises(ValueError, match="integers"):
        Segments(np.array([2.0]), np.array([10]), np.array([11]), np.array([2]), **one)
    with pytest.raises(ValueError, match="same shape"):
        Segments(np.array([2, 2]), np.array([10]), np.array([11]), np.array([2]), **one)


def test_segments_index_out_of_range_raises():
    seg = CreamSampler(128, 1024).sample(5, seed=0)
    assert len(seg[4]) == 1 and len(seg[-5]) == 1
    np.testing.assert_array_equal(seg[-1].position_ids(), seg.position_ids()[-1:])
    for idx in (5, -6, 10**9):
        with pytest.raises(IndexError, match="out of range"):
            seg[idx]


# --------------------------------------------------------------------------- sizes: refuse first
def refuses_fast(fn, match: str, *, seconds: float = 2.0, max_bytes: int = 64 << 20) -> str:
    """``fn()`` raises ValueError matching ``match`` within ``seconds``, allocating < max_bytes."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=match) as info:
            fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - start < seconds
    assert peak < max_bytes, f"allocated {peak} bytes before refusing"
    return str(info.value)


@pytest.mark.parametrize("call, match", [
    (lambda: RandPosSampler(4096, 32768).position_ids(10**7), r"ids .*GiB.* exceed the limit"),
    (lambda: RandPosSampler(16, 2**20).position_ids(2**13), r"random keys exceed the RandPos limit"),
    (lambda: RandPosSampler(16, 10**12), r"target_len=.* out of range for RandPos"),
    (lambda: CreamSampler(4096, 4096 * 10**8, k=1), r"target_len / train_len = 1e\+08 is out of range"),
    (lambda: CreamSampler(4096, 4096 * 10**8, k=1, middle="truncnorm"), r"target_len / train_len"),
    (lambda: CreamSampler(4096, 4096 * 10**8), r"k=400000000 is out of range"),  # the default k first
    (lambda: CreamSampler(256, 2048).sample(10**12), r"n=1000000000000 is out of range"),
    (lambda: CreamSampler(256, 2048).position_ids(10**7), r"ids .* exceed the limit"),
    (lambda: PoseSampler(256, 10**18), r"target_len=.* out of range"),
    (lambda: theorem.audit_all(40, 2000), r"audits .* exceeds the limit"),
    (lambda: theorem.region_map(3000, 10**9), r"region map .* exceed"),
    (lambda: coverage.distance_counts(CreamSampler(4, 2**40, k=1, middle="uniform").sample(2, seed=0)),
     r"target_len=.* exceed"),
    (lambda: segment_stats.segment_usage(CreamSampler(4, 2**40, k=1, middle="uniform").sample(2, seed=0)),
     r"target_len=.* exceed"),
])
def test_sizes_are_checked_before_allocating(call, match):
    message = refuses_fast(call, match)
    assert re.search(r"\d", message)  # the estimate / limit is stated


def test_branch_block_larger_than_n_allocates_only_n():
    tracemalloc.start()
    seg = CreamSampler(256, 2048, branch_block=10**15).sample(1000, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20 and len(seg) == 1000 and len(set(seg.branch.tolist())) == 1


# --------------------------------------------------------------------------- bad input, per function
BAD_SAMPLER_CALLS = [  # (callable, the parameter the message must name)
    (lambda: CreamSampler(256, 2048, mu=float("nan")), "mu"),
    (lambda: CreamSampler(256, 2048, mu=float("inf")), "mu"),
    (lambda: CreamSampler(256, 2048, sigma=0.0), "sigma"),
    (lambda: CreamSampler(256, 2048, sigma=-1.0), "sigma"),
    (lambda: CreamSampler(256, 2048, sigma=float("inf")), "sigma"),
    (lambda: CreamSampler(256, 2048, p_continuity=float("nan")), "p_continuity"),
    (lambda: CreamSampler(256, 2048, k=0), "k"),
    (lambda: CreamSampler(256, 2048, k=128), "k"),
    (lambda: CreamSampler(256, 2048, branch_block=0), "branch_block"),
    (lambda: CreamSampler(16, 2048), "k=512"),  # the default k = 4 L / N does not fit N = 16
    (lambda: CreamSampler(256, 2048, middle=3), "middle"),
    (lambda: CreamSampler(256, 2048, mu=1e300, middle="truncnorm"), "mu="),
    (lambda: CreamSampler(18, 5112, k=1, mu=-96.0, sigma=1e300, middle="truncnorm"), "sigma=1e+300"),  # scipy recursed
    (lambda: CreamSampler(256, 2048).sample(0), "n"),
    (lambda: CreamSampler(256, 2048).sample(5, seed=-1), "seed"),
    (lambda: CreamSampler(256, 2048).sample(5, seed=1.5), "seed"),
    (lambda: CreamSampler(256, 2048).rand_factor_from_u(np.array([0.5, 1.0])), "u must lie in"),
    (lambda: CreamSampler(256, 2048).rand_factor_from_u(np.array([np.nan])), "u must lie in"),
    (lambda: PoseSampler(256, 256), "target_len"),
    (lambda: RandPosSampler(0, 10), "train_len"),
    (lambda: make_sampler("bogus", train_len=4, target_len=8), "bogus"),
    (lambda: make_sampler("cream", train_len=256, target_len=2048, kk=3), "kk"),
]


@pytest.mark.parametrize("call, name", BAD_SAMPLER_CALLS)
def test_bad_sampler_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=re.escape(name)):
        call()


def test_every_registered_sampler_refuses_a_non_integer_length():
    for name in SAMPLERS:
        for bad in (256.0, "256", None, True, math.nan):
            with pytest.raises(ValueError, match="train_len"):
                make_sampler(name, train_len=bad, target_len=2048)


# --------------------------------------------------------------------------- tasks and evaluation
def _byte():
    from creamviz.models import byte_tokenizer

    return byte_tokenizer()


def test_task_generators_refuse_bad_requests():
    from creamviz import tasks

    tok = _byte()
    bad = [  # (call, what the message names)
        (lambda: tasks.kv_retrieval(tok, 256, n_pairs=0), "n_pairs=0"),
        (lambda: tasks.kv_retrieval(tok, 256, n_pairs=-3), "n_pairs=-3"),
        (lambda: tasks.kv_retrieval(tok, 256, n_pairs=10**6), "n_pairs=1000000"),
        (lambda: tasks.kv_retrieval(tok, 256, seed=-1), "seed=-1"),
        (lambda: tasks.lines_retrieval(tok, 256, seed=-5), "seed=-5"),
        (lambda: tasks.passkey(tok, 256, seed=-1), "seed=-1"),
        (lambda: tasks.niah(tok, 256, seed=-1), "seed=-1"),
        (lambda: tasks.passkey(tok, 256, depth=float("nan")), "depth"),
        (lambda: tasks.kv_retrieval(tok, 256, gold_index=True), "gold_index"),
        (lambda: tasks.kv_retrieval(tok, 10**12), "length=1000000000000"),
        (lambda: tasks.passkey(tok, True), "length"),
        (lambda: tasks.depth_sweep("kv", tok, 256, (0.5,), n_per_depth=0), "n_per_depth=0"),
        (lambda: tasks.depth_sweep("kv", tok, 256, ()), "depths"),
        (lambda: tasks.niah_grid(tok, (256,), (0.5,), n_per_cell=0), "n_per_cell=0"),
        (lambda: tasks.niah_grid(tok, (), (0.5,)), "lengths"),
        (lambda: tasks.niah(tok, 65536, depth=0.5), "haystack holds only"),  # the text runs out
        (lambda: tasks.depth_sweep("kv", tok, 256, (0.5,), n_per_depth=10**9), "1000000000 examples"),
        (lambda: tasks.niah_grid(tok, (256,) * 10, (0.5,) * 10, n_per_cell=10**6), "100000000 examples"),
    ]
    for call, name in bad:
        with pytest.raises(ValueError, match=re.escape(name)):
            call()


def test_evaluation_helpers_refuse_zero_sized_requests():
    from creamviz import evaluate

    tok = _byte()
    bad = [
        (lambda: evaluate.generate(None, tok, []), "prompts is empty"),
        (lambda: evaluate.generate(None, tok, [[5, 6], []]), "prompt 1 is empty"),
        (lambda: evaluate.generate(None, tok, [[5]], max_new_tokens=0), "max_new_tokens=0"),
        (lambda: evaluate.generate(None, tok, [[5]], batch_size=0), "batch_size=0"),
        (lambda: evaluate.evaluate_examples(None, tok, []), "examples is empty"),
        (lambda: evaluate.accuracy_by_depth(None, tok, n_per_depth=0), "n_per_depth=0"),
        (lambda: evaluate.accuracy_by_depth(None, tok, depths=()), "depths is empty"),
        (lambda: evaluate.niah_grid(None, tok, n_per_cell=0), "n_per_cell=0"),
        (lambda: evaluate.niah_grid(None, tok, lengths=()), "lengths is empty"),
        (lambda: evaluate.passkey_by_length(None, tok, lengths=()), "lengths is empty"),
        (lambda: evaluate.passkey_by_length(None, tok, n_per_length=0), "n_per_length=0"),
        (lambda: evaluate.ppl_by_position(None, tok, n_seqs=0), "n_seqs=0"),
        (lambda: evaluate.ppl_by_position(None, tok, bucket=0), "bucket=0"),
        (lambda: evaluate.ppl_by_position(None, tok, batch_size=0), "batch_size=0"),
        (lambda: evaluate.ppl_by_position(None, tok, n_seqs=10**9), "tokens exceed the limit"),
        (lambda: evaluate.passkey_by_length(None, tok, n_per_length=10**9), "examples, above the limit"),
        (lambda: evaluate.evaluate_eval_set(None, tok, "kv_L256", limit=0), "limit=0"),
        (lambda: evaluate.depth_curve([]), "records is empty"),
        (lambda: evaluate.niah_grid_from_records([]), "records is empty"),
        (lambda: evaluate.mean_over_seeds([]), "curves is empty"),
    ]
    for call, name in bad:
        with pytest.raises(ValueError, match=re.escape(name)):
            call()


def test_group_by_depth_against_a_hand_count():
    from creamviz import evaluate

    records = [{"task": "kv", "length": 256, "depth": d, "target_depth": t, "correct": c}
               for d, t, c in [(0.0, 0.0, True), (0.1, 0.0, False), (0.5, 0.5, True), (0.48, 0.5, True),
                               (1.0, 1.0, False)]]
    curve = evaluate.depth_curve(records)
    np.testing.assert_array_equal(curve.depths, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(curve.accuracy, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(curve.n, [2, 2, 1])
    grid = evaluate.niah_grid_from_records([{**r, "length": length} for r, length in
                                            zip(records, [256, 512, 256, 256, 512], strict=True)])
    np.testing.assert_array_equal(grid.lengths, [256, 512])
    np.testing.assert_array_equal(grid.n, [[1, 1], [2, 0], [0, 1]])
    np.testing.assert_array_equal(grid.accuracy, [[1.0, 0.0], [1.0, np.nan], [np.nan, 0.0]])


# --------------------------------------------------------------------------- attention maps
def test_attention_maps_refuses_positions_beyond_float32_rope_and_huge_pools():
    from creamviz.attention import attention_maps
    from creamviz.models import tiny_llama

    model = tiny_llama(num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                       num_key_value_heads=2)
    ids = list(range(10, 20))
    with pytest.raises(ValueError, match=r"position_ids reach 1073741833; valid is below 16777216"):
        attention_maps(model, ids, position_ids=np.arange(10) + 2**30)
    attention_maps(model, ids, position_ids=np.arange(10) + 2**24 - 10)  # the last exact one is fine
    refuses_fast(lambda: attention_maps(model, np.full(40000, 5), pool=40000), r"pool=40000: .* GiB, above the limit")


def test_segments_are_int32_below_2_30_and_int64_above():
    small = CreamSampler(256, 2048).sample(3, seed=0)
    big = CreamSampler(256, 2**31, k=1, middle="uniform").sample(3, seed=0)
    assert small.mid_end.dtype == np.int32 and small.rand_factor.dtype == np.int32
    assert big.mid_end.dtype == np.int64 and big.position_ids().dtype == np.int64
    assert_valid(big.position_ids(), 256, 2**31)
    assert PoseSampler(256, 2048).sample(3, seed=0).mid_start.dtype == np.int32


def test_tiny_llama_refuses_sizes_before_allocating():
    from creamviz.models import tiny_llama

    refuses_fast(lambda: tiny_llama(hidden_size=2**16, intermediate_size=2**18), r"parameters .* exceed the limit")
    for bad in (0, -4, 2.5, True):
        with pytest.raises(ValueError, match="num_hidden_layers"):
            tiny_llama(num_hidden_layers=bad)
