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


# =========================================================================== second round: the surfaces
# added since the first one (--data sources, the model cache, RoPE functions, chat rendering, the
# memory model, sampler plugins). One table per surface; Hypothesis where a space is accepted.

def _one_line(message: str) -> str:
    assert "\n" not in message and "Traceback" not in message, message
    return message


# --------------------------------------------------------------------------- datasets input (--data)
def _write_data(tmp_path, name):
    """Hostile --data sources, each written here; returns the path."""
    import json

    import datasets

    p = tmp_path / name
    if name == "malformed.jsonl":
        p.write_text('{"text": "hello"}\n{"text": "oops"\n{"text": "x"}\n')
    elif name == "binary.jsonl":
        p.write_bytes(bytes(np.random.default_rng(0).integers(128, 256, 3000, dtype=np.uint8)))
    elif name == "latin1.jsonl":
        p.write_bytes(b'{"text": "hello"}\n{"text": "caf\xe9"}\n')
    elif name == "null_text.jsonl":
        p.write_text('{"text": "hello"}\n{"text": null}\n')
    elif name == "parquet_named.jsonl":
        datasets.Dataset.from_dict({"text": ["a" * 300]}).to_parquet(str(p))
    elif name == "truncated_arrow":
        datasets.Dataset.from_dict({"text": ["a" * 300, "b" * 300]}).save_to_disk(str(p))
        arrow = next(f for f in p.iterdir() if f.suffix == ".arrow")
        arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    elif name.startswith("mask"):
        masks = {"mask_zeros.parquet": [[0] * 300, [0] * 300],
                 "mask_holes.parquet": [[1] * 100 + [0] * 100 + [1] * 100, [1] * 300],
                 "mask_values.parquet": [[2] * 300, [1] * 300],
                 "mask_length.parquet": [[1] * 299, [1] * 300]}[name]
        datasets.Dataset.from_dict({"input_ids": [[5] * 300, [6] * 300], "attention_mask": masks}).to_parquet(str(p))
    elif name == "labels_short.jsonl":
        p.write_text("".join(json.dumps({"input_ids": [5] * 80, "labels": [5] * k}) + "\n" for k in (80, 70)))
    elif name == "text_with_mask.jsonl":
        p.write_text('{"text": "hello", "attention_mask": [1, 1]}\n')
    return p


BAD_DATA = [  # file, what the one-line error must say
    ("malformed.jsonl", r"malformed\.jsonl.*line 2: not JSON"),
    ("binary.jsonl", r"binary\.jsonl.*line 1: byte 0 .* not UTF-8"),
    ("parquet_named.jsonl", r"parquet_named\.jsonl.*line 1"),
    ("latin1.jsonl", r"latin1\.jsonl', column 'text' holds text that is not valid UTF-8"),
    ("null_text.jsonl", r"null_text\.jsonl', column 'text': row 1 is null"),
    ("truncated_arrow", r"truncated_arrow'.*truncated or damaged"),
    ("mask_zeros.parquet", r"mask_zeros\.parquet', column 'attention_mask': row 0 is all zeros"),
    ("mask_holes.parquet", r"mask_holes\.parquet', column 'attention_mask': row 0 has padding"),
    ("mask_values.parquet", r"column 'attention_mask': row 0 holds values other than 0 and 1"),
    ("mask_length.parquet", r"column 'attention_mask': row 0 has 299 mask values for 300 input_ids"),
    ("text_with_mask.jsonl", r"text_with_mask\.jsonl' has an 'attention_mask' column"),
    ("labels_short.jsonl", r"labels_short\.jsonl', column 'labels': row 1 has 70 values for 80 input_ids"),
]


@pytest.fixture()
def isolated_datasets_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    return tmp_path


@pytest.mark.parametrize("name, match", BAD_DATA)
def test_bad_data_sources_give_one_line_naming_file_and_place(isolated_datasets_cache, name, match):
    from creamviz.data import DocumentDataset, load_documents
    from creamviz.models import byte_tokenizer

    path = _write_data(isolated_datasets_cache, name)
    with pytest.raises(ValueError, match=match) as info:
        docs, col = load_documents(str(path), byte_tokenizer())
        DocumentDataset(docs, 64, 4, 0, source=str(path), column=col)[0]
    _one_line(str(info.value))


def test_token_ids_outside_the_vocabulary_are_refused_naming_the_row(isolated_datasets_cache):
    import datasets

    from creamviz.data import load_documents

    path = isolated_datasets_cache / "ids.parquet"
    for rows, vocab, match in (([[5, 6], [7, -1]], None, r"row 1 holds token id -1; valid ids are >= 0"),
                               ([[5, 6], [7, 8], [384, 2]], 384, r"row 2 holds token id 384; valid ids are \[0, 384\)")):
        datasets.Dataset.from_dict({"input_ids": rows}).to_parquet(str(path))
        with pytest.raises(ValueError, match=match):
            load_documents(str(path), None, vocab_size=vocab)
    assert load_documents(str(path), None)[0]["input_ids"][2] == [384, 2]  # no vocabulary given: kept


def test_attention_mask_padding_is_not_trained_as_text(isolated_datasets_cache):
    """Right- and left-padded pre-tokenized rows: the rows keep exactly their masked-in tokens (and
    labels), so the collator never sees the padding."""
    import datasets

    from creamviz.data import load_documents

    pad = 0
    rows = {"input_ids": [[5, 6, 7] + [pad] * 3, [pad, pad, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17]],
            "labels": [[5, 6, 7, -100, -100, -100], [-100, -100, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17]],
            "attention_mask": [[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1], [1] * 6]}
    path = isolated_datasets_cache / "padded.parquet"
    datasets.Dataset.from_dict(rows).to_parquet(str(path))
    docs, _ = load_documents(str(path), None)
    assert docs["input_ids"] == [[5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15, 16, 17]]
    assert docs["labels"] == [[5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15, 16, 17]]
    assert "attention_mask" not in docs.column_names


def test_collator_refuses_empty_and_fully_masked_examples():
    from creamviz.training import PositionCollator

    collate = PositionCollator(CreamSampler(64, 256), seed=0)
    for example, match in (({"input_ids": []}, "0 input_ids"),
                           ({"input_ids": [4, 5, 6], "attention_mask": [0, 0, 0]}, "all zeros")):
        with pytest.raises(ValueError, match=match):
            collate([example])


# --------------------------------------------------------------------------- the model cache
SMOL = "smollm2-135m"


@pytest.fixture()
def fake_cache(tmp_path, monkeypatch):
    """A cache whose smollm2-135m directory holds the tiny base's weights (small and quick) with a
    digest recorded as fetch-model records it; returns the model directory."""
    import json
    import shutil

    from creamviz import models

    tokenizer_json = models.named_model_dir(SMOL) / "tokenizer.json"  # read before the cache moves
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    d = models.named_model_dir(SMOL)
    d.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(models.BASE_CHECKPOINT / name, d / name)
    if tokenizer_json.is_file():
        shutil.copy(tokenizer_json, d / "tokenizer.json")
    else:
        (d / "tokenizer.json").write_text("{}")
    digest = models.weights_digest(d / "model.safetensors")["sha256"]
    (d / models.SOURCE_FILE).write_text(json.dumps({"name": SMOL, "weights_digest": digest,
                                                    "config_sha256": models.file_sha256(d / "config.json")}))
    return d


def _damage(d, how):
    import torch
    from safetensors.torch import load_file, save_file

    weights = d / "model.safetensors"
    if how == "missing tensor":
        state = load_file(weights)
        state.pop("model.norm.weight")
        save_file(state, weights, metadata={"format": "pt"})
    elif how == "flipped bytes":
        data = bytearray(weights.read_bytes())
        n = int.from_bytes(data[:8], "little")
        import json

        start, end = json.loads(data[8:8 + n])["model.layers.1.mlp.up_proj.weight"]["data_offsets"]
        mid = 8 + n + (start + end) // 2
        data[mid:mid + 64] = bytes(64)
        weights.write_bytes(bytes(data))
    elif how == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size - 1000])
    elif how == "zeroed":
        state = load_file(weights)
        save_file({k: torch.zeros_like(v) for k, v in state.items()}, weights, metadata={"format": "pt"})
    elif how == "garbage config":
        (d / "config.json").write_text("<html>not found</html>")
    elif how == "config without model_type":
        (d / "config.json").write_text('{"hidden_size": 4}')
    elif how == "config of another shape":
        import json

        config = json.loads((d / "config.json").read_text())
        config.update(hidden_size=64, intermediate_size=256)
        (d / "config.json").write_text(json.dumps(config))


CACHE_DAMAGE = ["missing tensor", "flipped bytes", "truncated", "zeroed", "garbage config", "config without model_type",
                "config of another shape"]


@pytest.mark.parametrize("how", CACHE_DAMAGE)
def test_damaged_cache_is_neither_present_nor_loadable(fake_cache, how, capsys):
    from creamviz import fetch, models

    assert models.is_fetched(SMOL) and fetch.cache_state(SMOL) == "present"
    assert models.load_model(SMOL).config.vocab_size == 384  # the intact copy loads
    _damage(fake_cache, how)
    assert not models.is_fetched(SMOL)
    assert fetch.main(["--list"]) == 0
    assert "damaged" in capsys.readouterr().out
    with pytest.raises(ValueError, match=f"model '{SMOL}' in the cache .* is damaged") as info:
        models.load_model(SMOL)
    _one_line(str(info.value))


@pytest.mark.parametrize("how, match", [
    ("missing tensor", r"1 tensor\(s\) missing: model\.norm\.weight"),
    ("unexpected tensor", r"1 tensor\(s\) unexpected: extra\.weight"),
    ("zeroed", r"holds zeroed tensor data"),
    ("one zeroed matrix", r"zeroed tensor data \(model\.layers\.0\.mlp\.up_proj\.weight\)"),
    ("config of another shape", r"tensor\(s\) of the wrong shape: model\.embed_tokens\.weight"),
])
def test_local_directory_with_missing_unexpected_or_zeroed_tensors_does_not_load(tmp_path, how, match):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from creamviz.models import BASE_CHECKPOINT, load_model

    shutil.copy(BASE_CHECKPOINT / "config.json", tmp_path / "config.json")
    if how == "config of another shape":
        _damage(tmp_path, how)
    state = load_file(BASE_CHECKPOINT / "model.safetensors")
    if how == "missing tensor":
        state.pop("model.norm.weight")
    elif how == "unexpected tensor":
        state["extra.weight"] = torch.ones(3)
    elif how == "zeroed":
        state = {k: torch.zeros_like(v) for k, v in state.items()}
    elif how == "one zeroed matrix":
        state["model.layers.0.mlp.up_proj.weight"] = torch.zeros_like(state["model.layers.0.mlp.up_proj.weight"])
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=match) as info:
        load_model(tmp_path)
    _one_line(str(info.value))


def test_conversion_records_the_digest_that_loading_checks(tmp_path, monkeypatch):
    """fetch's convert() writes weights_digest into creamviz_source.json; it equals the digest of the
    written file (the GGUF reader is replaced by the tiny model, whose logits check is the same)."""
    import json

    from creamviz import fetch, models

    tok = models.byte_tokenizer()
    tok.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    monkeypatch.setattr(fetch, "load_gguf", lambda path: (models.tiny_llama().eval(), tok))
    out = fetch.convert(tmp_path / "unused.gguf", tmp_path / "models" / "x", source={"name": "x"})
    source = json.loads((out / models.SOURCE_FILE).read_text())
    assert source["weights_digest"] == models.weights_digest(out / "model.safetensors")["sha256"]
    assert source["config_sha256"] == models.file_sha256(out / "config.json")
    assert len(source["weights_digest"]) == 64


def test_weights_digest_reads_a_few_kib_per_tensor_and_sees_every_tensor(tmp_path):
    """Changing 4 bytes at the start, middle or end of any one tensor changes the digest."""
    import json

    from creamviz.models import BASE_CHECKPOINT, weights_digest

    original = (BASE_CHECKPOINT / "model.safetensors").read_bytes()
    n = int.from_bytes(original[:8], "little")
    header = json.loads(original[8:8 + n])
    base = weights_digest(BASE_CHECKPOINT / "model.safetensors")["sha256"]
    rng = np.random.default_rng(0)
    names = [k for k in header if k != "__metadata__"]
    for name in rng.choice(names, 6, replace=False):
        start, end = header[name]["data_offsets"]
        for off in (start, (start + end) // 2, end - 4):
            data = bytearray(original)
            data[8 + n + off: 8 + n + off + 4] = b"\xff\xff\xff\xff"
            (tmp_path / "w.safetensors").write_bytes(bytes(data))
            assert weights_digest(tmp_path / "w.safetensors")["sha256"] != base, (name, off)


# --------------------------------------------------------------------------- rope
def _llama(**kw):
    from transformers import LlamaConfig

    theta = kw.pop("theta", 10000.0)
    return LlamaConfig(**{"hidden_size": 64, "num_attention_heads": 2, **kw},
                       rope_parameters={"rope_type": "default", "rope_theta": theta})


@pytest.mark.parametrize("config, match", [
    (lambda: _llama(theta=0.0), r"rope_theta=0 is out of range"),
    (lambda: _llama(theta=-10000.0), r"rope_theta=-10000 is out of range"),
    (lambda: _llama(theta=float("nan")), r"rope_theta=nan is out of range"),
    (lambda: _llama(hidden_size=4, num_attention_heads=4), r"head_dim=1 .* at least 2"),
])
def test_rope_refuses_a_config_with_no_usable_rotation(config, match):
    from creamviz import rope

    for call in (lambda: rope.spectrum_from_config(config()), lambda: rope.rope_spectrum(config(), "linear", 4)):
        with pytest.raises(ValueError, match=match) as info:
            call()
        _one_line(str(info.value))


@pytest.mark.parametrize("call, match", [
    (lambda r, s: r.decay_distances(10**9, 10**9), r"decay_distances would need 1000000000 points"),
    (lambda r, s: r.decay_curves(s, 10**9), r"decay_curves would need 1000000000 points"),
    (lambda r, s: r.phase_coverage(s, np.ones(s.target_len), n_bins=2**28), r"phase_coverage .* bytes, above"),
    (lambda r, s: r.phase_index(s.inv_freq, 2**33, 64), r"phase_index would need .* bytes"),
    (lambda r, s: r.rope_overview(r.rope_spectrum("llama2-7b", "linear", 256)), r"rope_overview at L=1048576"),
])
def test_rope_sizes_are_checked_before_allocating(call, match):
    from creamviz import rope

    spectrum = rope.rope_spectrum("tiny", "linear", 4)
    refuses_fast(lambda: call(rope, spectrum), match)


# --------------------------------------------------------------------------- memory
@pytest.mark.parametrize("kwargs, name", [
    (dict(vocab=-32000), "vocab"), (dict(vocab=0), "vocab"), (dict(hidden=0), "hidden"),
    (dict(n_params=float("nan")), "n_params"), (dict(n_params=-1.0), "n_params"), (dict(layers=0), "layers"),
    (dict(heads=-4), "heads"), (dict(hidden=4.5), "hidden"), (dict(hidden=100, heads=3), "hidden=100"),
])
def test_memory_shapes_are_refused(kwargs, name):
    from creamviz.memory import LLAMA2_7B, ModelShape

    fields = dict(n_params=LLAMA2_7B.n_params, hidden=4096, layers=32, heads=32, vocab=32000)
    with pytest.raises(ValueError, match=re.escape(name)):
        ModelShape(**{**fields, **kwargs})


@pytest.mark.parametrize("argv, name", [
    (["--vocab", "-32000"], "vocab=-32000"), (["--params", "nan"], "n_params=nan"), (["--hidden", "0"], "hidden=0"),
    (["--gpu-gb", "nan"], "gpu_gb=nan"), (["--seq-len", "0"], "seq_len=0"), (["--world-size", "-2"], "world_size=-2"),
])
def test_memory_cli_refuses_in_one_line(argv, name, capsys):
    from creamviz import memory

    with pytest.raises(SystemExit) as info:
        memory.main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert name in captured.err and "fits" not in captured.out and "Traceback" not in captured.err


def test_memory_helpers_refuse_bad_values():
    from creamviz.memory import LLAMA2_7B, activation_bytes, memory_table, model_state_bytes

    for call, name in ((lambda: model_state_bytes(7e9, "ddp", 2, optimizer_bytes=float("nan")), "optimizer_bytes"),
                       (lambda: model_state_bytes(7e9, "ddp", 2.5), "world_size"),
                       (lambda: activation_bytes(LLAMA2_7B, 4096, 0, checkpointing=True), "batch"),
                       (lambda: activation_bytes(LLAMA2_7B, 4096, 1, checkpointing="yes"), "checkpointing"),
                       (lambda: memory_table(gpu_gb=-80), "gpu_gb"),
                       (lambda: memory_table(strategies=("zero4",)), "strategies")):
        with pytest.raises(ValueError, match=name):
            call()


# --------------------------------------------------------------------------- plugins: sampler output
def _plugin(output):
    """A registered-style plugin sampler whose position_ids returns ``output(n, N, L)``."""

    class Plugin(samplers.Sampler):
        name = "hostile_plugin"
        has_segments = False
        parameters = ()

        def position_ids(self, n, seed=None):
            return output(n, self.train_len, self.target_len)

    return Plugin


BAD_PLUGIN_OUTPUTS = [
    ("N - 1 ids", lambda n, N, L: np.tile(np.arange(N - 1), (n, 1)), r"shape \(\d+, 15\)"),
    ("N + 1 ids", lambda n, N, L: np.tile(np.arange(N + 1), (n, 1)), r"shape \(\d+, 17\)"),
    ("one column", lambda n, N, L: np.zeros((n, 1), dtype=np.int64), r"shape \(\d+, 1\)"),
    ("float ids", lambda n, N, L: np.tile(np.arange(N, dtype=float), (n, 1)), r"dtype float64"),
    ("id = L", lambda n, N, L: np.tile(np.arange(L - N + 1, L + 1), (n, 1)), r"id 64 >= target_len=64"),
    ("negative", lambda n, N, L: np.tile(np.arange(-1, N - 1), (n, 1)), r"id -1 < 0"),
    ("decreasing", lambda n, N, L: np.tile(np.arange(N)[::-1], (n, 1)), r"not strictly increasing"),
    ("repeated", lambda n, N, L: np.tile(np.r_[0, np.arange(N - 1)], (n, 1)), r"not strictly increasing"),
    ("a list", lambda n, N, L: [list(range(N))] * (n + 1), r"shape"),
]


@pytest.mark.parametrize("what, output, match", BAD_PLUGIN_OUTPUTS, ids=[c[0] for c in BAD_PLUGIN_OUTPUTS])
def test_bad_plugin_output_is_refused_naming_the_sampler(what, output, match):
    from creamviz.training import PositionCollator

    sampler = _plugin(output)(16, 64)
    with pytest.raises(ValueError, match=r"sampler 'hostile_plugin' .*" + match):
        sampler.position_ids(3, seed=0)
    with pytest.raises(ValueError, match=r"sampler 'hostile_plugin'"):
        PositionCollator(sampler, seed=0)([{"input_ids": list(range(16))}])


class _DuckSampler:
    """Not a Sampler subclass: the collator accepts anything with position_ids / train_len."""

    name, has_segments, train_len, target_len = "duck", False, 16, 64

    def __init__(self, output):
        self.output = output

    def position_ids(self, n, seed=None):
        return self.output(n, self.train_len, self.target_len)


@given(st.integers(1, 3), st.integers(14, 18), st.sampled_from(["sorted", "any", "range", "dup"]),
       st.integers(0, 2**32 - 1))
@settings(max_examples=150, deadline=None)
def test_every_plugin_output_reaching_training_is_a_valid_id_matrix(rows, width, kind, seed):
    """Whatever a plugin returns, the collator's position_ids are a valid (batch, N) id matrix inside
    [0, L), strictly increasing per row, or the collator refuses naming the sampler."""
    from creamviz.training import PositionCollator

    big_n, big_l = 16, 64

    def output(n, N, L):
        rng = np.random.default_rng(seed)
        if kind == "sorted":
            ids = np.sort(rng.choice(np.arange(-2, L + 2), size=(n, width), replace=True), axis=1)
        elif kind == "any":
            ids = rng.integers(-3, L + 3, size=(n, width))
        elif kind == "range":
            ids = np.tile(np.sort(rng.choice(L, size=min(width, L), replace=False)), (n, 1))
        else:
            ids = np.tile(np.arange(width), (n, 1))
            ids[:, rng.integers(1, width)] = ids[:, 0]
        return ids

    for sampler in (_plugin(output)(big_n, big_l), _DuckSampler(output)):
        collate = PositionCollator(sampler, seed=0)
        examples = [{"input_ids": list(range(big_n)), "sample_index": i} for i in range(rows)]
        try:
            batch = collate(examples)
        except ValueError as err:
            assert re.search(r"sampler '(hostile_plugin|duck)'", str(err)), str(err)
            event("refused")
            continue
        event("accepted")
        ids = batch["position_ids"].numpy()
        assert_valid(ids, big_n, big_l)


def test_explorer_shows_a_plugin_with_wrong_rows_as_an_error():
    from creamviz.widgets import SamplerExplorer

    cls = _plugin(lambda n, N, L: np.tile(np.arange(N + 1), (n, 1)))
    samplers.register_sampler(cls, replace=True)
    try:
        ex = SamplerExplorer(train_len=16, target_len=64, n_samples=10)
        assert not ex.set_params(method="hostile_plugin")
        assert "sampler 'hostile_plugin' returned position ids of shape" in ex.error
    finally:
        samplers.unregister_sampler("hostile_plugin")


# --------------------------------------------------------------------------- chat rendering
def _smol_tokenizer():
    from creamviz import models

    if not models.is_fetched(SMOL):
        pytest.skip(f"{SMOL} is not in the cache (creamviz fetch-model {SMOL})")
    return models.load_tokenizer(SMOL)


SMOL_DEFAULT_SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
CONTENTS = ["x", "hello world", "\n\nstarts with blank lines", "\nnewline first", " leading space", "ends\n\n",
            "héllo — ünïcode ✓", "4", "line one\nline two", "  ", "12345 67890", "\n\n", "a\n\nb"]


@pytest.mark.parametrize("labels", ["all", "assistant"])
def test_chat_ids_and_labels_on_120_random_smollm2_conversations(labels):
    """The ids equal the whole conversation's tokenization (turns starting with "\\n\\n" included);
    with labels="assistant" exactly the tokens starting inside an assistant answer (content + its
    "<|im_end|>\\n", spans built by hand from SmolLM2's ChatML, default system prompt included) are
    labelled: never the injected system prompt, a header or a user turn."""
    from creamviz.chat import render_chat

    tok = _smol_tokenizer()
    rng = np.random.default_rng(0)
    for _ in range(120):
        roles = (["system"] if rng.random() < 0.3 else []) + \
            [str(r) for r in rng.choice(["user", "assistant"], size=int(rng.integers(1, 6)))]
        messages = [{"role": r, "content": str(rng.choice(CONTENTS)) + ("" if rng.random() < 0.5 else str(rng.choice(CONTENTS)))}
                    for r in roles]
        text, spans = ("" if roles[0] == "system" else SMOL_DEFAULT_SYSTEM), []
        for m in messages:
            text += f"<|im_start|>{m['role']}\n"
            start = len(text)
            text += m["content"] + "<|im_end|>\n"
            if m["role"] == "assistant":
                spans.append((start, len(text)))
        assert tok.apply_chat_template(messages, tokenize=False) == text  # the hand-built rendering
        ids, lab = render_chat(tok, messages, labels=labels)
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        assert ids == enc["input_ids"]
        if labels == "all":
            assert lab == ids
            continue
        labelled = [(a, b) for (a, b), y in zip(enc["offset_mapping"], lab, strict=True) if y != -100]
        wanted = [(a, b) for (a, b) in enc["offset_mapping"] if any(lo <= a and b <= hi for lo, hi in spans)]
        assert set(wanted) <= set(labelled)  # every token wholly inside an answer is labelled
        assert all(any(lo <= a < hi for lo, hi in spans) for a, b in labelled)  # nothing outside is


def test_chat_assistant_only_conversation_labels_no_injected_text():
    """The issue's reproducer: one assistant message; the template injects a system prompt and a header."""
    from creamviz.chat import render_chat

    tok = _smol_tokenizer()
    ids, lab = render_chat(tok, [{"role": "assistant", "content": "x"}], labels="assistant")
    assert tok.decode([t for t, y in zip(ids, lab, strict=True) if y != -100]) == "x<|im_end|>\n"
