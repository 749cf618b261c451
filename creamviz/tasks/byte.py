"""Byte-scaled retrieval tasks for the tiny model (1 token = 1 byte, window N = 256): key-value,
LongChat-Lines, passkey and needle in a haystack. Their templates keep the structure of the paper's
(docs/CREAM.md, section 9) with a smaller vocabulary; every number they give is labelled as such."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from creamviz.tasks.common import (
    TaskExample,
    _check_length,
    _check_positive,
    _check_seed,
    _gold,
    _hex,
    _largest_fit,
    _round,
    check_example_count,
    check_fill,
    check_tokenizer,
    encode,
    fit_growing,
    load_corpus,
    n_answer_tokens,
    unique_answer,
)
from creamviz.validation import check_int, check_real

TASKS = ("kv", "lines", "passkey", "niah")

# templates (byte-scaled versions of the paper's)
KV_PREFIX = "kv {"
KV_SEP = ","
KV_SUFFIX = "}\n"
LINES_PREFIX = "lines:\n"
PASSKEY_PREFIX = "There is a pass key hidden in this text. Find it and remember it.\n"
PASSKEY_FILLER = ("The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.",
                  "There and back again.")
PASSKEY_NEEDLE = "The pass key is {k}. Remember it. {k} is the pass key."
PASSKEY_QUERY = "\nWhat is the pass key? The pass key is"
NIAH_NEEDLE = " The magic number is {k}. "
NIAH_QUERY = "\nWhat is the magic number? The magic number is"


# ----------------------------------------------------------------------------- key-value retrieval

def kv_text(pairs: Sequence[tuple[str, str]], query: str) -> str:
    """Prompt text for key-value retrieval: ``kv {k:v,k:v,...}\\n<query>:``."""
    body = KV_SEP.join(f"{k}:{v}" for k, v in pairs)
    return f"{KV_PREFIX}{body}{KV_SUFFIX}{query}:"


def kv_retrieval(tokenizer, length: int, *, gold_index: int | None = None, depth: float | None = None,
                 n_pairs: int | None = None, seed: int = 0, key_len: int = 4, value_len: int = 4
                 ) -> TaskExample:
    """Lost-in-the-Middle key-value retrieval sized to ``length`` tokens (prompt + answer).

    Keys are distinct random hex strings of ``key_len`` digits, values random hex of ``value_len`` digits
    (short hex instead of the paper's UUIDs, for the byte-level tiny model). ``n_pairs`` defaults to as
    many as fit (refused when the key space runs out first: the prompt would fall short of ``length``
    by more than :func:`~creamviz.tasks.common.fill_slack`); the gold pair sits at ``gold_index`` (or at
    ``round(depth * (n - 1))``, or at random). The answer occurs exactly once in the prompt (a gold
    value repeated elsewhere is redrawn).
    """
    _check_length(length)
    seed = _check_seed(seed)
    check_tokenizer(tokenizer)
    key_len = check_int("key_len", key_len, 1, 8)
    value_len = check_int("value_len", value_len, 1, 8)
    cap = 16 ** key_len
    if n_pairs is not None:
        n_pairs = check_int("n_pairs", n_pairs, 1, min(cap, length), hint=f" (distinct {key_len}-digit hex keys, "
                            "at most length), or None for as many as fit")
    base = max(1, length // (key_len + value_len + 2) + 1) if n_pairs is None else n_pairs

    def attempt(n_max: int):
        rng = np.random.default_rng(seed)
        keys = _hex(rng.choice(cap, size=n_max, replace=False), key_len)
        values = _hex(rng.integers(0, 16 ** value_len, size=n_max), value_len)
        gold_draw = rng.random()  # fixed draw so that the random gold index does not depend on n
        if n_pairs is not None:
            return n_pairs, (rng, keys, values, gold_draw)
        n, _ = _largest_fit(lambda n: kv_text(list(zip(keys[:n], values[:n], strict=True)), keys[n - 1]),
                            tokenizer, length - n_answer_tokens(tokenizer, values[0]), n_max)
        return n, (rng, keys, values, gold_draw)

    n, (rng, keys, values, gold_draw) = fit_growing(attempt, base, cap)
    if gold_index is None and depth is None:
        g = min(n - 1, int(gold_draw * n))
    else:
        g = _gold(rng, n, gold_index, depth)
    values = list(values[:n])
    if n_pairs is None:  # refuse a short prompt before anything else (a full key space has every value as a key)
        check_fill("kv", len(encode(tokenizer, kv_text(list(zip(keys[:n], values, strict=True)), keys[g])))
                   + n_answer_tokens(tokenizer, values[g]), length,
                   f"the {cap} distinct {key_len}-digit hex keys run out (key_len)")
    redraw = np.random.default_rng([seed, 1])

    def with_answer(v: str) -> str:
        values[g] = v
        return kv_text(list(zip(keys[:n], values, strict=True)), keys[g])

    answer, prompt = unique_answer(redraw, lambda: _hex(redraw.integers(0, 16 ** value_len, size=1),
                                                        value_len)[0], with_answer, values[g])
    pairs = list(zip(keys[:n], values, strict=True))
    ids = encode(tokenizer, prompt)
    used = len(ids) + n_answer_tokens(tokenizer, answer)
    if used > length:
        raise ValueError(f"n_pairs={n} does not fit in length={length} tokens")
    before = KV_PREFIX + KV_SEP.join(f"{k}:{v}" for k, v in pairs[:g]) + (KV_SEP if g else "")
    return TaskExample("kv", prompt, answer, ids, int(length), g / max(n - 1, 1), g, n,
                       len(encode(tokenizer, before)), int(seed), depth, meta={"pairs": pairs})


# ----------------------------------------------------------------------------- LongChat-Lines

def lines_text(lines: Sequence[tuple[str, str]], query: str) -> str:
    body = "".join(f"line {i}: {v}\n" for i, v in lines)
    return f"{LINES_PREFIX}{body}what is in line {query}? "


LINES_IDS = 16 ** 3  # distinct 3-hex line ids: at most this many lines


def lines_retrieval(tokenizer, length: int, *, gold_index: int | None = None,
                    depth: float | None = None, seed: int = 0) -> TaskExample:
    """LongChat-Lines-style retrieval: ``line <id>: <number>`` lines, ask for one line's number.

    Line ids are distinct 3-digit hex strings, numbers 4-digit decimals (1000-9999), scaled down from
    LongChat's word ids / REGISTER_CONTENT for the byte-level tiny model. Score: first number generated.
    At most 4096 lines (about 61K byte tokens): a longer ``length`` is refused. The answer occurs
    exactly once in the prompt.
    """
    _check_length(length)
    seed = _check_seed(seed)
    check_tokenizer(tokenizer)

    def attempt(n_max: int):
        rng = np.random.default_rng(seed)
        ids_ = _hex(rng.choice(LINES_IDS, size=n_max, replace=False), 3)
        nums = [str(v) for v in rng.integers(1000, 10000, size=n_max)]
        n, _ = _largest_fit(lambda n: lines_text(list(zip(ids_[:n], nums[:n], strict=True)), ids_[n - 1]),
                            tokenizer, length - n_answer_tokens(tokenizer, nums[0]), n_max)
        return n, (rng, ids_, nums)

    n, (rng, ids_, nums) = fit_growing(attempt, max(1, length // 15 + 1), LINES_IDS)
    g = _gold(rng, n, gold_index, depth)
    nums = list(nums[:n])
    redraw = np.random.default_rng([seed, 1])

    def with_answer(v: str) -> str:
        nums[g] = v
        return lines_text(list(zip(ids_[:n], nums, strict=True)), ids_[g])

    answer, prompt = unique_answer(redraw, lambda: str(int(redraw.integers(1000, 10000))), with_answer, nums[g])
    lines = list(zip(ids_[:n], nums, strict=True))
    ids = encode(tokenizer, prompt)
    check_fill("lines", len(ids) + n_answer_tokens(tokenizer, answer), length,
               f"the {LINES_IDS} distinct 3-hex line ids run out")
    before = LINES_PREFIX + "".join(f"line {i}: {v}\n" for i, v in lines[:g])
    return TaskExample("lines", prompt, answer, ids, int(length),
                       g / max(n - 1, 1), g, n, len(encode(tokenizer, before)), int(seed), depth)


# ----------------------------------------------------------------------------- passkey

def _needle_draws(length: int, seed: int, depth: float | None, *, digits: int):
    """Shared start of passkey / NIAH: check ``length``, draw the ``digits``-digit key, then the
    depth when none is asked (in that order, so the fixed sets stay byte-identical)."""
    _check_length(length)
    rng = np.random.default_rng(_check_seed(seed))
    key = str(int(rng.integers(10 ** (digits - 1), 10 ** digits)))
    depth = float(rng.random()) if depth is None else depth
    if not 0.0 <= depth <= 1.0:  # also refuses NaN
        raise ValueError(f"depth={depth} must lie in [0, 1]")
    return rng, key, depth


def passkey(tokenizer, length: int, *, depth: float | None = None, seed: int = 0) -> TaskExample:
    """Passkey retrieval: a 5-digit key inside repeated filler sentences, at relative ``depth``.

    The filler is the paper's ("The grass is green. The sky is blue. ..."), cycled; the needle goes
    after filler sentence ``round(depth * n_sentences)``. Score: the first integer generated == key.
    """
    target = depth
    rng, key, depth = _needle_draws(length, seed, depth, digits=5)
    check_tokenizer(tokenizer)
    needle = PASSKEY_NEEDLE.format(k=key)
    answer = " " + key

    def parts(n: int) -> tuple[str, str]:
        sentences = [PASSKEY_FILLER[i % len(PASSKEY_FILLER)] for i in range(n)]
        cut = _round(depth * n)
        before = PASSKEY_PREFIX + " ".join(sentences[:cut]) + (" " if cut else "")
        after = (" " if cut < n else "") + " ".join(sentences[cut:])
        return before, after

    def build(n: int) -> str:
        before, after = parts(n)
        return before + needle + after + PASSKEY_QUERY

    budget = length - n_answer_tokens(tokenizer, answer)
    n = _largest_fit(build, tokenizer, budget, max(1, length // 3), n_min=0)[0]
    before, _ = parts(n)
    prompt = build(n)
    cut = _round(depth * n)
    return TaskExample("passkey", prompt, answer, encode(tokenizer, prompt), int(length),
                       cut / max(n, 1), cut, n, len(encode(tokenizer, before)), int(seed), target)


def niah(tokenizer, length: int, *, depth: float | None = None, seed: int = 0,
         haystack: Sequence[str] | None = None) -> TaskExample:
    """Needle in a haystack: ``The magic number is <4 digits>.`` at relative ``depth`` of natural text.

    The haystack is a contiguous slice (random start, seeded) of the held-out corpus documents joined
    (or of ``haystack``), cut at word boundaries to fill ``length`` tokens; the needle goes before
    filler word ``round(depth * n_words)``. Score: the first integer generated == the number.
    """
    target = depth
    rng, key, depth = _needle_draws(length, seed, depth, digits=4)
    check_tokenizer(tokenizer)
    text = "\n".join(haystack if haystack is not None else load_corpus("eval"))
    words = re.findall(r"\S+\s*", text)
    n_max = min(len(words), length)  # a word is at least one token
    start = int(rng.integers(0, max(1, len(words) - n_max)))
    words = words[start:start + n_max]
    needle = NIAH_NEEDLE.format(k=key)
    answer = " " + key

    def parts(n: int) -> tuple[str, str]:
        cut = _round(depth * n)
        return "".join(words[:cut]).rstrip(), "".join(words[cut:n]).rstrip()

    def build(n: int) -> str:
        before, after = parts(n)
        return before + needle + after + NIAH_QUERY

    budget = length - n_answer_tokens(tokenizer, answer)
    n, ids = _largest_fit(build, tokenizer, budget, n_max, n_min=0)
    if n == len(words) and n_max < length and len(ids) < budget - 64:  # the text ran out, not the budget
        raise ValueError(f"length={length}: the haystack holds only about {len(ids)} tokens of text; pass a "
                         "longer haystack (or a smaller length) so the prompt really has length tokens")
    before, _ = parts(n)
    cut = _round(depth * n)
    return TaskExample("niah", build(n), answer, ids, int(length), cut / max(n, 1), cut, n,
                       len(encode(tokenizer, before)), int(seed), target)


def niah_grid(tokenizer, lengths: Sequence[int], depths: Sequence[float], *, n_per_cell: int = 1,
              seed: int = 0) -> list[TaskExample]:
    """NIAH examples over the grid lengths x depths, ``n_per_cell`` seeds each (seed, seed+1, ...)."""
    _check_positive("n_per_cell", n_per_cell)
    if not len(lengths) or not len(depths):
        raise ValueError(f"lengths and depths must not be empty, got {len(lengths)} and {len(depths)}")
    check_example_count(n_per_cell * len(lengths) * len(depths))
    lengths = [_check_length(L) for L in lengths]
    depths = [check_real("depth", d, 0.0, 1.0) for d in depths]
    return [niah(tokenizer, L, depth=d, seed=seed + i)
            for L in lengths for d in depths for i in range(n_per_cell)]


