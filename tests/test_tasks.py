"""Task generators: token budgets, gold placement, seeding, scoring, the shipped fixed eval sets."""

from __future__ import annotations

import re

import pytest

from creamviz import tasks
from creamviz.models import FastByteTokenizer, byte_tokenizer
from creamviz.tasks import encode, kv_retrieval, lines_retrieval, niah, passkey

BYTE = byte_tokenizer()
FAST = FastByteTokenizer()
GENS = {"kv": kv_retrieval, "lines": lines_retrieval, "passkey": passkey, "niah": niah}


def _answer_len(tok, ex):
    return tasks.n_answer_tokens(tok, ex.answer)


@pytest.mark.parametrize("task", list(GENS))
@pytest.mark.parametrize("length", [192, 256, 1000, 2048])
def test_prompt_fits_budget_and_is_nearly_full(task, length):
    ex = GENS[task](BYTE, length, depth=0.5, seed=3)
    total = ex.n_tokens + _answer_len(BYTE, ex)
    assert total <= length
    # one more item would not fit: kv pair 10, line 15, filler sentence 22 tokens, a corpus word < 100
    assert total > length - {"kv": 11, "lines": 16, "passkey": 23, "niah": 100}[task]
    assert ex.prompt_ids == encode(BYTE, ex.prompt)
    assert ex.task == task and ex.length == length and 0 <= ex.depth <= 1


@pytest.mark.parametrize("task", list(GENS))
def test_tokenizer_agnostic_budget(task, bpe):
    for length in (200, 700):
        ex = GENS[task](bpe, length, depth=0.3, seed=1)
        assert ex.prompt_ids[0] == bpe.bos_token_id
        assert ex.n_tokens + _answer_len(bpe, ex) <= length
        assert ex.n_tokens == len(encode(bpe, ex.prompt))
        assert len(ex.prompt) > ex.n_tokens  # BPE merges: fewer tokens than characters


def test_fast_byte_tokenizer_matches_byt5():
    for task, gen in GENS.items():
        a, b = gen(BYTE, 512, depth=0.25, seed=7), gen(FAST, 512, depth=0.25, seed=7)
        assert a.prompt == b.prompt and a.prompt_ids == b.prompt_ids, task


def _kv_pairs(prompt):
    body = prompt[prompt.index("{") + 1:prompt.index("}")]
    pairs = [tuple(p.split(":")) for p in body.split(",")]
    query = prompt[prompt.index("}\n") + 2:-1]
    return pairs, query


@pytest.mark.parametrize("gold_index", [0, 1, 7, 12, 23])
def test_kv_gold_pair_at_requested_index(gold_index):
    ex = kv_retrieval(BYTE, 256, gold_index=gold_index, seed=11)
    pairs, query = _kv_pairs(ex.prompt)
    assert len(pairs) == ex.n_items == 24
    assert len({k for k, _ in pairs}) == len(pairs)  # distinct keys
    assert all(re.fullmatch(r"[0-9a-f]{4}", k) and re.fullmatch(r"[0-9a-f]{4}", v) for k, v in pairs)
    assert pairs[gold_index] == (query, ex.answer)
    assert ex.gold_index == gold_index
    gold_text = f"{query}:{ex.answer}"
    assert ex.prompt_ids[ex.gold_pos:ex.gold_pos + 9] == encode(BYTE, gold_text)
    # the context (pairs) is the same whatever the gold index: only the query changes
    other = kv_retrieval(BYTE, 256, gold_index=0, seed=11)
    assert _kv_pairs(other.prompt)[0] == pairs


def test_kv_depth_maps_to_index_half_up():
    # 6 pairs, indices 0..5: depth 0.5 -> 2.5 -> 3 (half up; round() would give 2), 0.3 -> 1.5 -> 2
    # (round() also 2), 0.1 -> 0.5 -> 1 (round() gives 0), 0.7 -> 3.5 -> 4, 1.0 -> 5
    for depth, index in ((0.0, 0), (0.1, 1), (0.3, 2), (0.5, 3), (0.7, 4), (1.0, 5)):
        ex = kv_retrieval(BYTE, 256, n_pairs=6, depth=depth, seed=0)
        assert ex.gold_index == index and ex.target_depth == depth
        pairs, query = _kv_pairs(ex.prompt)
        assert len(pairs) == 6 and query == pairs[index][0]  # the query asks for that pair


def test_kv_explicit_pairs_and_errors():
    ex = kv_retrieval(BYTE, 2048, n_pairs=10, gold_index=9, seed=2)
    assert ex.n_items == 10 and ex.n_tokens < 200
    with pytest.raises(ValueError, match="gold_index"):
        kv_retrieval(BYTE, 256, gold_index=24, seed=0)
    with pytest.raises(ValueError, match="not both"):
        kv_retrieval(BYTE, 256, gold_index=1, depth=0.5)
    with pytest.raises(ValueError, match="depth"):
        kv_retrieval(BYTE, 256, depth=1.5)
    with pytest.raises(ValueError, match="length"):
        kv_retrieval(BYTE, 8)
    with pytest.raises(ValueError, match="does not fit"):
        kv_retrieval(BYTE, 64, n_pairs=40)


def test_lines_gold_line_holds_answer():
    ex = lines_retrieval(BYTE, 512, gold_index=5, seed=4)
    lines = re.findall(r"line ([0-9a-f]{3}): (\d{4})\n", ex.prompt)
    assert len(lines) == ex.n_items
    query = re.search(r"what is in line ([0-9a-f]{3})\? $", ex.prompt).group(1)
    assert lines[5] == (query, ex.answer)
    assert ex.prompt[ex.gold_pos:].startswith(f"line {query}: {ex.answer}")


@pytest.mark.parametrize("gen", [passkey, niah])
def test_needle_depth_orders_position(gen):
    positions = [gen(BYTE, 1024, depth=d, seed=5).gold_pos for d in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert positions == sorted(positions) and positions[0] < 100 and positions[-1] > 900


def test_passkey_and_niah_needles():
    ex = passkey(BYTE, 512, depth=0.5, seed=9)
    key = ex.answer.strip()
    assert re.fullmatch(r"\d{5}", key)
    assert ex.prompt.count(key) == 2  # "The pass key is K. Remember it. K is the pass key."
    assert ex.prompt.endswith(tasks.PASSKEY_QUERY)
    assert ex.prompt[ex.gold_pos:].startswith("The pass key is " + key)
    ex = niah(BYTE, 512, depth=0.5, seed=9)
    assert ex.prompt.count(f"The magic number is {ex.answer.strip()}.") == 1
    assert ex.prompt.endswith(tasks.NIAH_QUERY)


@pytest.mark.parametrize("task", list(GENS))
def test_seeded_reproducibility(task):
    a = GENS[task](BYTE, 400, seed=21)
    b = GENS[task](BYTE, 400, seed=21)
    c = GENS[task](BYTE, 400, seed=22)
    assert a == b
    assert (a.prompt, a.answer) != (c.prompt, c.answer)


def test_niah_grid_and_depth_sweep_shapes():
    grid = tasks.niah_grid(BYTE, [256, 512], [0.0, 0.5, 1.0], n_per_cell=2, seed=0)
    assert len(grid) == 12 and {(e.length, e.target_depth) for e in grid} == {
        (L, d) for L in (256, 512) for d in (0.0, 0.5, 1.0)}
    sweep = tasks.depth_sweep("kv", BYTE, 300, [0.0, 1.0], n_per_depth=3, seed=0)
    assert [e.gold_index for e in sweep[:3]] == [0, 0, 0] and all(
        e.gold_index == e.n_items - 1 for e in sweep[3:])
    with pytest.raises(ValueError, match="task"):
        tasks.depth_sweep("nope", BYTE, 300, [0.0])


def test_score():
    assert tasks.score("kv", "0d44</s>", "0d44") and not tasks.score("kv", "0d4", "0d44")
    assert tasks.score("passkey", " 48213 is", " 48213")
    assert not tasks.score("passkey", " 4821 3", " 48213")
    assert not tasks.score("niah", "no number", " 1234")
    assert tasks.score("lines", "1234\n5", "1234")
    with pytest.raises(ValueError, match="task"):
        tasks.score("bogus", "", "")


def test_corpus_splits():
    train, ev, all_ = (tasks.load_corpus(s) for s in ("train", "eval", "all"))
    assert len(all_) == 79 and len(ev) == 7 and len(train) == 71
    assert set(train).isdisjoint(ev)
    with pytest.raises(ValueError, match="split"):
        tasks.load_corpus("test")


def test_shipped_eval_sets():
    names = tasks.eval_set_names()
    for task in ("kv", "lines", "passkey"):
        for L in tasks.EVAL_LENGTHS:
            assert f"{task}_L{L}" in names
    assert "niah" in names
    ex = tasks.load_eval_set("kv_L256")
    assert len(ex) == 100
    assert {e.target_depth for e in ex} == set(tasks.EVAL_DEPTHS)
    for e in ex:
        pairs, query = _kv_pairs(e.prompt)
        assert pairs[e.gold_index] == (query, e.answer)
        assert e.n_tokens + 4 <= 256
    grid = tasks.load_eval_set("niah")
    assert {(e.length, e.target_depth) for e in grid} == {
        (L, d) for L in tasks.EVAL_LENGTHS for d in tasks.EVAL_DEPTHS}
    with pytest.raises(ValueError, match="name"):
        tasks.load_eval_set("kv_L3")


def test_eval_sets_rebuild_identically(tmp_path):
    """The shipped JSONL files are exactly what build_eval_sets regenerates (seeded, no drift)."""
    sizes = tasks.build_eval_sets(tmp_path, FAST)
    assert sizes["kv_L2048"] == 100 and sizes["niah"] == 200
    for name in sizes:
        shipped = (tasks.EVAL_DIR / f"{name}.jsonl").read_text()
        assert (tmp_path / f"{name}.jsonl").read_text() == shipped, name
