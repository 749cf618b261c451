"""RULER-style tasks: token budgets, required strings present exactly once, scoring, fixed sets."""

from __future__ import annotations

import re

import pytest

from creamviz import tasks
from creamviz.models import FastByteTokenizer, byte_tokenizer
from creamviz.tasks import RULER_GENERATORS, encode

BYTE = byte_tokenizer()
FAST = FastByteTokenizer()


@pytest.mark.parametrize("task", list(RULER_GENERATORS))
@pytest.mark.parametrize("length", [256, 1024, 2048])
def test_fits_budget_and_is_nearly_full(task, length):
    ex = RULER_GENERATORS[task](FAST, length, seed=5)
    total = ex.n_tokens + tasks.n_answer_tokens(FAST, ex.answer)
    assert total <= length
    # one more haystack word (< 100 bytes) or key-value pair (10 bytes) would not fit
    assert total > length - (11 if task == "kv_multiquery" else 100)
    assert ex.prompt_ids == encode(FAST, ex.prompt) and ex.task == task and ex.length == length


@pytest.mark.parametrize("task", list(RULER_GENERATORS))
def test_tokenizer_agnostic_budget(task, bpe):
    ex = RULER_GENERATORS[task](bpe, 700, seed=2)
    assert ex.prompt_ids[0] == bpe.bos_token_id
    assert ex.n_tokens == len(encode(bpe, ex.prompt))
    assert ex.n_tokens + tasks.n_answer_tokens(bpe, ex.answer) <= 700
    assert len(ex.prompt) > ex.n_tokens  # BPE merges: fewer tokens than characters


@pytest.mark.parametrize("seed", range(12))
def test_multikey_answer_once_and_distractors(seed):
    ex = tasks.multikey_niah(FAST, 2048, n_keys=4, seed=seed)
    keys, values = ex.meta["keys"], ex.meta["values"]
    assert len(set(keys)) == len(set(values)) == 4 and ex.answer == " " + values[0]
    for k, v in zip(keys, values, strict=True):  # every needle once, the asked one at gold_pos
        assert ex.prompt.count(tasks.MK_NEEDLE.format(key=k, value=v).strip()) == 1
        assert ex.prompt.count(v) == 1
    assert ex.prompt.endswith(tasks.MK_QUERY.format(key=keys[0]))
    assert ex.prompt[ex.gold_pos:].startswith(tasks.MK_NEEDLE.format(key=keys[0], value=values[0]))


def test_multikey_depth_places_the_asked_needle():
    shallow = tasks.multikey_niah(FAST, 2048, depth=0.05, seed=1)
    deep = tasks.multikey_niah(FAST, 2048, depth=0.95, seed=1)
    assert shallow.gold_pos < 0.15 * shallow.n_tokens and deep.gold_pos > 0.85 * deep.n_tokens


@pytest.mark.parametrize("seed", range(12))
def test_multivalue_all_values_once_in_order(seed):
    ex = tasks.multivalue_niah(FAST, 2048, n_values=3, seed=seed)
    values = ex.meta["values"]
    assert ex.answer.split() == values and tasks.required_strings(ex.task, ex.answer) == values
    positions = [ex.prompt.index(tasks.MK_NEEDLE.format(key=ex.meta["key"], value=v).strip()) for v in values]
    assert positions == sorted(positions)  # the answer lists them in order of appearance
    assert all(ex.prompt.count(v) == 1 for v in values)


@pytest.mark.parametrize("seed", range(12))
def test_variable_tracking_chains(seed):
    ex = tasks.variable_tracking(FAST, 2048, n_hops=3, n_chains=2, seed=seed)
    names, values = ex.meta["names"], ex.meta["values"]
    chain = names[:3]
    assert ex.answer.split() == chain
    assert ex.prompt.endswith(tasks.VT_QUERY.format(value=values[0]))
    # each variable assigned exactly once; its chain's hops appear in order
    for c in range(2):
        hops = names[3 * c:3 * c + 3]
        first = ex.prompt.index(tasks.VT_FIRST.format(name=hops[0], value=values[c]).strip())
        later = [ex.prompt.index(tasks.VT_HOP.format(name=b, prev=a).strip()) for a, b in zip(hops[:-1], hops[1:], strict=True)]
        assert [first, *later] == sorted([first, *later])
    for n in names:
        assert len(re.findall(rf"VAR {n} =", ex.prompt)) == 1
    assert ex.prompt.count(values[0]) == 2  # the first assignment and the question


@pytest.mark.parametrize("seed", range(12))
def test_kv_multiquery_values_distinct_and_once(seed):
    ex = tasks.kv_multiquery(FAST, 2048, n_queries=3, seed=seed)
    query = ex.prompt[ex.prompt.rindex(tasks.KV_SUFFIX) + len(tasks.KV_SUFFIX):-1].split(tasks.KV_MQ_SEP)
    body = ex.prompt[len(tasks.KV_PREFIX):ex.prompt.rindex(tasks.KV_SUFFIX)]
    pairs = dict(p.split(":") for p in body.split(tasks.KV_SEP))
    assert len(pairs) == ex.n_items and len(set(query)) == 3
    assert ex.answer.split(tasks.KV_MQ_SEP) == [pairs[k] for k in query]
    for v in ex.answer.split(tasks.KV_MQ_SEP):
        assert ex.prompt.count(v) == 1  # no value repeats, none equals a key
    assert ex.prompt[ex.gold_pos:].startswith(f"{query[0]}:")


def test_kv_multiquery_depth():
    for d in (0.0, 0.5, 1.0):
        ex = tasks.kv_multiquery(FAST, 1024, depth=d, seed=3)
        assert ex.gold_index == tasks._round(d * (ex.n_items - 1))


def test_seeded_and_different_seeds_differ():
    for gen in RULER_GENERATORS.values():
        a, b, c = gen(FAST, 512, seed=4), gen(FAST, 512, seed=4), gen(FAST, 512, seed=5)
        assert a.prompt == b.prompt and a.answer == b.answer and a.prompt != c.prompt


def test_ruler_scoring():
    assert tasks.score("multivalue_niah", " 1234 5678 9012 and more", " 1234 5678 9012")
    assert not tasks.score("multivalue_niah", " 1234 5678", " 1234 5678 9012")  # all required
    assert tasks.score("kv_multiquery", "0a1b,ffff,1234", "0a1b,ffff,1234")
    assert not tasks.score("kv_multiquery", "0a1b,fff", "0a1b,ffff,1234")
    assert tasks.ruler_partial_score("kv_multiquery", "0a1b,fff", "0a1b,ffff,1234") == pytest.approx(1 / 3)
    assert tasks.ruler_partial_score("variable_tracking", " ABC XYZ", " ABC DEF XYZ") == pytest.approx(2 / 3)
    assert tasks.score("multikey_niah", " 4321.", " 4321") and not tasks.score("multikey_niah", " 432", " 4321")


def test_bad_parameters_raise_with_the_value():
    with pytest.raises(ValueError, match="n_keys=0"):
        tasks.multikey_niah(FAST, 512, n_keys=0)
    with pytest.raises(ValueError, match="n_hops=9"):
        tasks.variable_tracking(FAST, 512, n_hops=9)
    with pytest.raises(ValueError, match="depth=1.5"):
        tasks.multikey_niah(FAST, 512, depth=1.5)
    with pytest.raises(ValueError, match="length"):
        tasks.multivalue_niah(FAST, 64)  # three needles cannot fit
    with pytest.raises(ValueError, match="task="):
        tasks.required_strings("no_such_task", "x")


@pytest.mark.slow
def test_ruler_eval_sets_rebuild_identically(tmp_path):
    """The shipped RULER-style sets and kv100_L2048 are exactly what the builder regenerates."""
    sizes = tasks.build_ruler_eval_sets(tmp_path, FAST)
    assert sizes == {**{tasks.ruler_eval_set_name(t): 100 for t in tasks.RULER_TASKS}, "kv100_L2048": 500}
    for name in sizes:
        assert (tmp_path / f"{name}.jsonl").read_text() == (tasks.EVAL_DIR / f"{name}.jsonl").read_text(), name
    loaded = tasks.load_eval_set("variable_tracking_L2048", BYTE)
    assert len(loaded) == 100 and all(ex.n_tokens + len(ex.answer) <= 2048 for ex in loaded)
