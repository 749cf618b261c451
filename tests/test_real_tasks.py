"""Real-tokenizer tasks (Lost in the Middle key-value retrieval, passkey and NIAH through the chat
template), their fixed sets, scoring and the evaluation helpers. Tokenizer only: no forward pass."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from creamviz import evaluate, tasks
from creamviz.attention import prompt_spans
from creamviz.models import FastByteTokenizer, load_tokenizer

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("smollm2-135m")


def n_tokens(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"])


def chat_ids(tok, user: str) -> list[int]:
    return tok.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True,
                                   return_dict=True)["input_ids"]


def user_turn(ex) -> str:
    return ex.prompt.split("<|im_start|>user\n", 1)[1].split("<|im_end|>", 1)[0]


# ----------------------------------------------------------------------------- key-value retrieval

@pytest.mark.parametrize("length", [512, 2048, 4096])
def test_kv_uuid_is_the_paper_prompt_sized_in_real_tokens(tok, length):
    ex = tasks.kv_uuid(tok, length, depth=0.5, seed=3)
    user = user_turn(ex)
    assert user.startswith("Extract the value corresponding to the specified key in the JSON object below.\n\n"
                           "JSON data:\n{")
    records = user[user.index("{"):user.rindex("}") + 1]
    data = json.loads(records)  # a real JSON object
    assert len(data) == ex.n_items and all(UUID4.match(k) and UUID4.match(v) for k, v in data.items())
    assert records.count("\n") == ex.n_items - 1  # one pair a line, as in Lost in the Middle
    key, value = list(data.items())[ex.gold_index]
    assert user.endswith(f'\n\nKey: "{key}"\nCorresponding value:') and ex.answer == value
    assert ex.gold_index == math.floor(0.5 * (ex.n_items - 1) + 0.5)
    assert ex.prompt.count(value) == 1 and ex.prompt.count(key) == 2  # in the object and asked
    # sized in real tokens: the prompt is the chat template's, prompt + answer fit, one more pair would not
    assert ex.prompt_ids == chat_ids(tok, user)
    pair_cost = n_tokens(tok, f'"{key}": "{value}",\n ')
    # nearly full: less than one pair plus the margin for the longest key / value (a few tokens) left
    assert length - pair_cost - 12 <= ex.n_tokens + n_tokens(tok, value) <= length


def test_kv_uuid_same_object_at_every_depth_only_the_key_moves(tok):
    exs = [tasks.kv_uuid(tok, 1024, depth=d, seed=11) for d in tasks.EVAL_DEPTHS]
    assert len({ex.n_items for ex in exs}) == 1
    n = exs[0].n_items
    assert [ex.gold_index for ex in exs] == [math.floor(d * (n - 1) + 0.5) for d in tasks.EVAL_DEPTHS]
    objects = {user_turn(ex).split("\n\nKey:")[0] for ex in exs}
    assert len(objects) == 1
    assert [ex.depth for ex in exs] == [ex.gold_index / (n - 1) for ex in exs]
    positions = [ex.gold_pos for ex in exs]
    assert positions == sorted(positions) and positions[0] < positions[-1]
    other = tasks.kv_uuid(tok, 1024, depth=0.5, seed=12)
    assert user_turn(other).split("\n\nKey:")[0] not in objects  # another seed, another object
    assert tasks.kv_uuid(tok, 1024, depth=0.5, seed=11).prompt == exs[2].prompt  # seeded


def test_kv_uuid_spans_and_errors(tok):
    ex = tasks.kv_uuid(tok, 1024, gold_index=4, seed=2)
    spans = prompt_spans(ex, tok)
    pair = tok.decode(ex.prompt_ids[spans.needle_start:spans.needle_stop])
    key, value = ex.meta["pairs"][4]
    assert f'"{key}": "{value}"' in pair and len(pair) <= len(f' "{key}": "{value}",') + 1
    assert spans.needle_start == ex.gold_pos
    question = tok.decode(ex.prompt_ids[spans.question_start:])
    assert question.startswith(f'Key: "{key}"') and question.endswith("<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="gold_index"):
        tasks.kv_uuid(tok, 1024, gold_index=999, seed=2)
    with pytest.raises(ValueError, match="length too small"):
        tasks.kv_uuid(tok, 100, seed=2)
    with pytest.raises(ValueError, match="does not fit"):
        tasks.kv_uuid(tok, 512, n_pairs=20, seed=2)  # 20 UUID pairs need ~1000 tokens
    with pytest.raises(ValueError, match=r"n_pairs=40 is out of range.*\[2, 32\]"):
        tasks.kv_uuid(tok, 512, n_pairs=40, seed=2)  # more than length // 16: refused before drawing
    with pytest.raises(ValueError, match="n_pairs must be an integer"):
        tasks.kv_uuid(tok, 512, n_pairs=2.5, seed=2)
    with pytest.raises(ValueError, match="chat template"):
        tasks.kv_uuid(FastByteTokenizer(), 512, chat=True)


def test_kv_uuid_without_a_chat_template_is_plain_text():
    byte = FastByteTokenizer()  # no chat template: plain text, one token per byte
    ex = tasks.kv_uuid(byte, 600, depth=1.0, seed=0)
    assert ex.prompt.startswith("Extract the value") and "<|im_start|>" not in ex.prompt
    assert ex.n_tokens == len(ex.prompt.encode()) <= 600 - len(ex.answer)
    spans = prompt_spans(ex, byte)
    key, value = ex.meta["pairs"][ex.gold_index]
    assert byte.decode(ex.prompt_ids[spans.needle_start:spans.needle_stop]) == f'"{key}": "{value}"'


# ----------------------------------------------------------------------------- passkey / NIAH

@pytest.mark.parametrize("task", ["passkey_chat", "niah_chat"])
@pytest.mark.parametrize("length", [1024, 4096])
def test_needle_chat_tasks(tok, task, length):
    exs = [tasks.GENERATORS[task](tok, length, depth=d, seed=5) for d in tasks.EVAL_DEPTHS]
    key = exs[0].answer.strip()
    assert len(key) == (5 if task == "passkey_chat" else 7) and all(ex.answer == " " + key for ex in exs)
    opening = tasks.PASSKEY_CHAT_OPENING if task == "passkey_chat" else tasks.NIAH_CHAT_OPENING
    question = tasks.PASSKEY_CHAT_QUESTION if task == "passkey_chat" else tasks.NIAH_CHAT_QUESTION
    for ex in exs:
        needle = (tasks.PASSKEY_NEEDLE if task == "passkey_chat" else tasks.NIAH_NEEDLE.strip()).format(k=key)
        assert ex.prompt.count(needle) == 1  # the answer is in the context exactly once
        assert ex.prompt.count(key) == (2 if task == "passkey_chat" else 1)
        user = user_turn(ex)
        assert user.endswith("\n\n" + question)
        assert ex.prompt.endswith("<|im_start|>assistant\n" + opening)  # the answer opening prefilled
        assert ex.prompt_ids == chat_ids(tok, user) + tok(opening, add_special_tokens=False)["input_ids"]
        assert length - 30 <= ex.n_tokens + n_tokens(tok, ex.answer) <= length
        spans = prompt_spans(ex, tok)
        assert key in tok.decode(ex.prompt_ids[spans.needle_start:spans.needle_stop])
        assert tok.decode(ex.prompt_ids[spans.question_start:]).startswith(question)
    positions = [ex.gold_pos for ex in exs]
    assert positions == sorted(positions) and positions[-1] - positions[0] > length // 2
    assert [round(ex.target_depth, 6) for ex in exs] == list(tasks.EVAL_DEPTHS)


# ----------------------------------------------------------------------------- scoring, fixed sets, stats

def test_scoring_of_chat_tasks():
    value = "2db9a55b-d59a-4a30-a4c8-bf7ae0a1e014"
    assert tasks.score("kv_uuid", f'The value is "{value.upper()}".', value)
    assert not tasks.score("kv_uuid", value[:-1], value)
    assert tasks.score("passkey_chat", " 48213. Remember", " 48213")
    assert not tasks.score("niah_chat", " the number 1234567 is 7654321", " 7654321")
    with pytest.raises(ValueError, match="kv_uuid"):
        tasks.score("summary", "", "")


def test_real_eval_sets_rebuild_identically_and_load(tok, tmp_path):
    """The shipped 2K sets are what the builder regenerates with SmolLM2's tokenizer (the 4K sets come
    from the same code with another length); loading gives the generator's ids and spans."""
    sizes = tasks.build_real_eval_sets(tok, tmp_path, lengths=(2048,))
    assert sizes == {"kv_uuid_L2048": 50, "passkey_chat_L2048": 25, "niah_chat_L2048": 25}
    assert set(tasks.real_eval_set_names()) == {f"{t}_L{L}" for t in tasks.CHAT_TASKS
                                                for L in tasks.REAL_EVAL_LENGTHS}
    for name in sizes:
        assert (tmp_path / f"{name}.jsonl").read_text() == (tasks.REAL_EVAL_DIR / f"{name}.jsonl").read_text()
    loaded = tasks.load_chat_eval_set("kv_uuid_L2048", tok)
    fresh = tasks.kv_uuid(tok, 2048, depth=loaded[7].target_depth, seed=loaded[7].seed)
    assert loaded[7].prompt_ids == fresh.prompt_ids and loaded[7].gold_pos == fresh.gold_pos
    assert prompt_spans(loaded[7], tok) == prompt_spans(fresh, tok)
    assert all(ex.n_tokens + n_tokens(tok, ex.answer) <= 2048 for ex in loaded)
    counts = np.unique([ex.target_depth for ex in loaded], return_counts=True)[1]
    assert counts.tolist() == [10] * 5
    with pytest.raises(ValueError, match="not found"):
        tasks.load_chat_eval_set("kv_L2048", tok)


def test_wilson_interval_matches_the_closed_form():
    z = 1.959963984540054
    for k, n in [(0, 10), (3, 10), (10, 10), (17, 40)]:
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        np.testing.assert_allclose(evaluate.wilson_interval(k, n), (centre - half, centre + half), atol=1e-9)
    with pytest.raises(ValueError, match="k=11"):
        evaluate.wilson_interval(11, 10)
    curve = evaluate.depth_curve([{"task": "kv_uuid", "length": 64, "depth": d, "target_depth": d,
                                   "correct": c} for d, c in [(0, True), (0, False), (1, True), (1, True)]])
    rows = evaluate.depth_table(curve)
    assert [(r["correct"], r["n"]) for r in rows] == [(1, 2), (2, 2)]
    assert rows[1]["ci_high"] == pytest.approx(1.0) and rows[1]["ci_low"] < 1


def test_common_prefix_and_groups():
    assert evaluate.common_prefix_len([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert evaluate.common_prefix_len([[1, 2], [1, 2]]) == 2
    byte = FastByteTokenizer()
    exs = tasks.depth_sweep("kv_uuid", byte, 700, (0.0, 1.0), n_per_depth=2, seed=4)
    assert evaluate.context_groups(exs) == [[0, 2], [1, 3]]  # seeds 4 and 5, two depths each
