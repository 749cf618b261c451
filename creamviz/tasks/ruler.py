"""RULER-style tasks scaled to the byte-level tiny model."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from creamviz.tasks.byte import KV_PREFIX, KV_SEP, KV_SUFFIX
from creamviz.tasks.common import (
    TaskExample,
    _check_length,
    _check_seed,
    _hex,
    _largest_fit,
    _round,
    check_fill,
    check_tokenizer,
    encode,
    fit_growing,
    load_corpus,
    n_answer_tokens,
)
from creamviz.validation import check_int, check_real

# ============================================================================= RULER-style tasks
# Harder, non-saturating retrieval tasks after RULER (Hsieh et al., 2024), scaled to the byte-level
# tiny model and sized in tokens like the tasks above. These are look-alikes, not RULER's tasks (those
# are in ruler_verbatim.py). Each answer is a set of required strings; creamviz's own strict rule
# ``all_strings_exact`` counts a generation correct when it contains every one of them, case-sensitive
# (all-or-nothing); RULER's ``string_match_all`` would give the lower-cased share found:
#
# - ``multikey_niah``     n needles ``The magic number for <key> is <number>.`` with distinct keys in
#   natural text; one key is asked: ``\nThe magic number for <key> is`` -> `` <number>``.
# - ``multivalue_niah``   n needles with the *same* key and distinct numbers; all must be returned:
#   ``\nAll magic numbers for <key>:`` -> `` <n1> <n2> <n3>`` (in order of appearance).
# - ``variable_tracking`` chains ``VAR A = 12345.``, ``VAR B = VAR A.``, ... hidden in natural text
#   (one chain per value, hops in order); name every variable equal to the asked value:
#   ``\nVariables equal to 12345:`` -> `` A B C``.
# - ``kv_multiquery``     key-value retrieval over as many pairs as fit, several keys asked at once:
#   ``kv {k:v,...}\n<k1>,<k2>,<k3>:`` -> ``<v1>,<v2>,<v3>``.
#
# Keys, numbers and variable names are drawn so that none occurs in the haystack slice: every
# required string appears exactly once in the prompt (variable names once per assignment line).

RULER_TASKS = ("multikey_niah", "multivalue_niah", "variable_tracking", "kv_multiquery")
MK_NEEDLE = " The magic number for {key} is {value}. "
MK_QUERY = "\nThe magic number for {key} is"
MV_QUERY = "\nAll magic numbers for {key}:"
VT_FIRST = " VAR {name} = {value}. "
VT_HOP = " VAR {name} = VAR {prev}. "
VT_QUERY = "\nVariables equal to {value}:"
KV_MQ_SEP = ","
KV_MQ_PAIRS = 16 ** 4 // 2  # keys and values are distinct 4-hex strings: at most this many pairs


def _haystack_words(rng: np.random.Generator, length: int, haystack: Sequence[str] | None) -> list[str]:
    """A seeded contiguous slice of at most ``length`` words of the haystack (held-out corpus)."""
    text = "\n".join(haystack if haystack is not None else load_corpus("eval"))
    words = re.findall(r"\S+\s*", text)
    n_max = min(len(words), length)  # a word is at least one token
    start = int(rng.integers(0, max(1, len(words) - n_max)))
    return words[start:start + n_max]


def _fresh_strings(rng: np.random.Generator, n: int, draw: Callable[[], str], avoid: str) -> list[str]:
    """``n`` distinct strings from ``draw()`` that do not occur in ``avoid`` (nor in each other)."""
    out: list[str] = []
    for _ in range(1000 * n):
        s = draw()
        if s not in avoid and all(s not in o and o not in s for o in out):
            out.append(s)
            if len(out) == n:
                return out
    raise ValueError(f"could not draw {n} distinct strings absent from the haystack")  # pragma: no cover


def _needle_prompt(tokenizer, length: int, words: Sequence[str], needles: Sequence[str],
                   depths: Sequence[float], query: str, answer: str) -> tuple[str, list[int], int, list[int]]:
    """Insert ``needles`` before word ``round(depth * n)`` (ties keep the given order) of the largest
    word count ``n`` whose prompt (+ answer) fits ``length`` tokens. Returns the prompt, its ids,
    ``n`` and each needle's token offset in the prompt ids."""
    order = sorted(range(len(needles)), key=lambda i: (depths[i], i))

    def pieces(n: int) -> tuple[list[str], list[int]]:
        out, starts, last = [], [0] * len(needles), 0
        for i in order:
            cut = _round(depths[i] * n)
            out.append("".join(words[last:cut]).rstrip())
            starts[i] = len(out)
            out.append(needles[i])
            last = cut
        out.append("".join(words[last:n]).rstrip())
        return out, starts

    def build(n: int) -> str:
        return "".join(pieces(n)[0]) + query

    answer_tokens = n_answer_tokens(tokenizer, answer)
    n, ids = _largest_fit(build, tokenizer, length - answer_tokens, len(words), n_min=0)
    check_fill("RULER-style", len(ids) + answer_tokens, length,
               "the haystack text runs out (pass a longer haystack)")
    parts, starts = pieces(n)
    offsets = [len(encode(tokenizer, "".join(parts[:s]))) for s in starts]
    return build(n), ids, n, offsets


def _depths(rng: np.random.Generator, n: int, first: float | None) -> list[float]:
    """``n`` needle depths in [0, 1]: the first one ``first`` (if given), the rest uniform."""
    d = [float(x) for x in rng.random(n)]
    if first is not None:
        if not 0.0 <= first <= 1.0:
            raise ValueError(f"depth={first} must lie in [0, 1]")
        d[0] = float(first)
    return d


def _hex_draw(rng: np.random.Generator, width: int) -> Callable[[], str]:
    return lambda: format(int(rng.integers(16 ** width)), f"0{width}x")


def _start(tokenizer, length: int, seed: int, haystack: Sequence[str] | None
           ) -> tuple[int, np.random.Generator, list[str], str]:
    """The needle tasks' common start: ``length``, ``tokenizer`` and ``seed`` checked, then the
    example's generator and its haystack slice (drawn first from it) as words and as one text."""
    _check_length(length)
    check_tokenizer(tokenizer)
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    words = _haystack_words(rng, length, haystack)
    return seed, rng, words, "".join(words)


def _int_draw(rng: np.random.Generator, digits: int) -> Callable[[], str]:
    return lambda: str(int(rng.integers(10 ** (digits - 1), 10 ** digits)))


def multikey_niah(tokenizer, length: int, *, n_keys: int = 4, depth: float | None = None, seed: int = 0,
                  haystack: Sequence[str] | None = None) -> TaskExample:
    """Multi-key needle in a haystack: ``n_keys`` needles with distinct 4-hex keys and 4-digit numbers;
    the asked needle sits at relative ``depth`` (random if None), the others at random depths."""
    n_keys = check_int("n_keys", n_keys, 1, 16)
    seed, rng, words, text = _start(tokenizer, length, seed, haystack)
    keys = _fresh_strings(rng, n_keys, _hex_draw(rng, 4), text)
    values = _fresh_strings(rng, n_keys, _int_draw(rng, 4), text + "".join(keys))
    depths = _depths(rng, n_keys, depth)
    needles = [MK_NEEDLE.format(key=k, value=v) for k, v in zip(keys, values, strict=True)]
    answer = " " + values[0]
    prompt, ids, n, offsets = _needle_prompt(tokenizer, length, words, needles, depths,
                                             MK_QUERY.format(key=keys[0]), answer)
    return TaskExample("multikey_niah", prompt, answer, ids, int(length), depths[0], 0, n, offsets[0],
                       int(seed), depth, meta={"keys": keys, "values": values, "depths": depths})


def multivalue_niah(tokenizer, length: int, *, n_values: int = 3, seed: int = 0,
                    haystack: Sequence[str] | None = None) -> TaskExample:
    """Multi-value needle in a haystack: ``n_values`` needles with one 4-hex key and distinct 4-digit
    numbers at random depths; the answer lists every number in order of appearance."""
    n_values = check_int("n_values", n_values, 1, 16)
    seed, rng, words, text = _start(tokenizer, length, seed, haystack)
    key = _fresh_strings(rng, 1, _hex_draw(rng, 4), text)[0]
    values = _fresh_strings(rng, n_values, _int_draw(rng, 4), text + key)
    depths = sorted(_depths(rng, n_values, None))
    needles = [MK_NEEDLE.format(key=key, value=v) for v in values]
    answer = " " + " ".join(values)
    prompt, ids, n, offsets = _needle_prompt(tokenizer, length, words, needles, depths,
                                             MV_QUERY.format(key=key), answer)
    return TaskExample("multivalue_niah", prompt, answer, ids, int(length), depths[0], 0, n, offsets[0],
                       int(seed), None, meta={"key": key, "values": values, "depths": depths})


def variable_tracking(tokenizer, length: int, *, n_hops: int = 3, n_chains: int = 2, seed: int = 0,
                      haystack: Sequence[str] | None = None) -> TaskExample:
    """Variable tracking: ``n_chains`` chains of ``n_hops`` assignments (``VAR A = 12345.``, then
    ``VAR B = VAR A.`` ...), each chain in depth order, interleaved in natural text; the first chain's
    value is asked and every variable of that chain must be named (3-letter upper-case names)."""
    n_hops = check_int("n_hops", n_hops, 1, 8)
    n_chains = check_int("n_chains", n_chains, 1, 8)
    seed, rng, words, text = _start(tokenizer, length, seed, haystack)
    letters = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
    names = _fresh_strings(rng, n_hops * n_chains,
                           lambda: letters[rng.integers(0, 26, size=3)].tobytes().decode(), text)
    values = _fresh_strings(rng, n_chains, _int_draw(rng, 5), text)
    needles, depths = [], []
    for c in range(n_chains):
        chain = names[c * n_hops:(c + 1) * n_hops]
        needles += [VT_FIRST.format(name=chain[0], value=values[c])]
        needles += [VT_HOP.format(name=b, prev=a) for a, b in zip(chain[:-1], chain[1:], strict=True)]
        depths += sorted(float(x) for x in rng.random(n_hops))
    answer = " " + " ".join(names[:n_hops])
    prompt, ids, n, offsets = _needle_prompt(tokenizer, length, words, needles, depths,
                                             VT_QUERY.format(value=values[0]), answer)
    return TaskExample("variable_tracking", prompt, answer, ids, int(length), depths[0], 0, n, offsets[0],
                       int(seed), None, meta={"names": names, "values": values, "depths": depths})


def kv_multiquery(tokenizer, length: int, *, n_queries: int = 3, depth: float | None = None,
                  seed: int = 0) -> TaskExample:
    """Key-value retrieval with several keys asked at once, over as many pairs as fit ``length``.

    Keys and values are 4-hex strings, all distinct (no value equals a key or another value); the
    first asked pair sits at relative ``depth`` (random if None), the other asked pairs at random."""
    _check_length(length)
    seed = _check_seed(seed)
    check_tokenizer(tokenizer)
    n_queries = check_int("n_queries", n_queries, 1, 16)
    if depth is not None:
        depth = check_real("depth", depth, 0.0, 1.0)

    def attempt(n_max: int):
        rng = np.random.default_rng(seed)
        drawn = _hex(rng.choice(16 ** 4, size=2 * n_max, replace=False), 4)
        keys, values = drawn[:n_max], drawn[n_max:]
        first, rest = float(rng.random()) if depth is None else depth, rng.random(n_queries - 1)

        def asked(n: int) -> list[int]:
            idx = [_round(first * (n - 1))]
            for r in rest:  # distinct indices: step forward from the drawn one
                j = int(r * n)
                while j in idx:
                    j = (j + 1) % n
                idx.append(j)
            return idx

        def build(n: int) -> str:
            pairs = list(zip(keys[:n], values[:n], strict=True))
            body = KV_SEP.join(f"{k}:{v}" for k, v in pairs)
            return f"{KV_PREFIX}{body}{KV_SUFFIX}" + KV_MQ_SEP.join(keys[i] for i in asked(n)) + ":"

        answer_len = n_answer_tokens(tokenizer, KV_MQ_SEP.join(values[:n_queries]))
        n, ids = _largest_fit(build, tokenizer, length - answer_len, n_max, n_min=n_queries)
        return n, (keys, values, asked, build, ids, answer_len)

    n, (keys, values, asked, build, ids, answer_len) = fit_growing(
        attempt, max(n_queries, length // 10 + 1), KV_MQ_PAIRS)
    check_fill("kv_multiquery", len(ids) + answer_len, length,
               f"the {KV_MQ_PAIRS} pairs of distinct 4-hex keys and values run out")

    idx = asked(n)
    answer = KV_MQ_SEP.join(values[i] for i in idx)
    before = KV_PREFIX + KV_SEP.join(f"{k}:{v}" for k, v in zip(keys[:idx[0]], values[:idx[0]], strict=True))
    return TaskExample("kv_multiquery", build(n), answer, ids, int(length), idx[0] / max(n - 1, 1), idx[0], n,
                       len(encode(tokenizer, before + (KV_SEP if idx[0] else ""))), int(seed), depth,
                       meta={"asked": idx})


RULER_GENERATORS = {"multikey_niah": multikey_niah, "multivalue_niah": multivalue_niah,
                    "variable_tracking": variable_tracking, "kv_multiquery": kv_multiquery}
