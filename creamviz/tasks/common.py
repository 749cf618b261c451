"""Shared pieces of the task generators: the example record, tokenization helpers, argument
checks, rounding and the natural-text corpus."""

from __future__ import annotations

import functools
import math
import pathlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from creamviz.resources import resource_path
from creamviz.validation import check_int, check_size

CORPUS_PATH = resource_path("corpus", "pydoc_topics.txt")  # the natural-text corpus
EVAL_DIR = resource_path("eval")  # the fixed evaluation sets

@dataclass
class TaskExample:
    """One retrieval prompt. Lengths in tokens of the tokenizer that built it."""

    task: str  # "kv" | "lines" | "passkey" | "niah"
    prompt: str  # prompt text (ends right before the answer)
    answer: str  # gold continuation, e.g. "0d44" or " 48213"
    prompt_ids: list[int]  # tokenized prompt (BOS included if the tokenizer has one)
    length: int  # requested budget L: len(prompt_ids) + answer tokens <= length
    depth: float  # relative position of the relevant item, 0 = start, 1 = end of the context
    gold_index: int  # index of the relevant item among n_items (filler unit index for passkey/niah)
    n_items: int  # pairs / lines / filler units in the context
    gold_pos: int  # token offset of the relevant item in prompt_ids
    seed: int
    target_depth: float | None = None  # the depth asked for (None when given as gold_index / random)
    meta: dict = field(default_factory=dict)  # task-specific extras (e.g. kv pairs for training)

    @property
    def n_tokens(self) -> int:
        return len(self.prompt_ids)

    def record(self, *, with_ids: bool = False) -> dict:
        d = asdict(self)
        d.pop("meta")
        if not with_ids:
            d.pop("prompt_ids")
        d["n_tokens"] = self.n_tokens
        return d


# ----------------------------------------------------------------------------- tokenization helpers

def encode(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens, BOS prepended if the tokenizer defines one."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = getattr(tokenizer, "bos_token_id", None)
    return [bos, *ids] if bos is not None else ids


def n_answer_tokens(tokenizer, answer: str) -> int:
    return len(tokenizer(answer, add_special_tokens=False)["input_ids"])


def _largest_fit(build: Callable[[int], str], tokenizer, budget: int, n_max: int, n_min: int = 1
                 ) -> tuple[int, list[int]]:
    """Largest n in [n_min, n_max] with len(encode(build(n))) <= budget (binary search), and its ids."""
    lo, hi, best = n_min, n_max, None
    while lo <= hi:
        mid = (lo + hi) // 2
        ids = encode(tokenizer, build(mid))
        if len(ids) <= budget:
            best, lo = (mid, ids), mid + 1
        else:
            hi = mid - 1
    if best is None:
        need = len(encode(tokenizer, build(n_min)))
        raise ValueError(f"length too small: the prompt needs at least {need} tokens plus the answer, "
                         f"but the budget leaves {budget}")
    return best


def fit_growing(attempt: Callable[[int], tuple[int, object]], base: int, cap: int) -> tuple[int, object]:
    """``attempt(n_max)`` -> ``(n, state)`` for ``n_max = base``, then 4, 16, 64 times more (at most
    ``cap``) while the estimate ``n_max`` itself binds: a sub-word tokenizer packs more items into
    ``length`` than the byte estimate ``base``. The first attempt's draws are the byte tokenizer's."""
    for scale in (1, 4, 16, 64):
        n_max = min(base * scale, cap)
        n, state = attempt(n_max)
        if n < n_max or n_max == cap:
            break
    return n, state


MAX_LENGTH = 1 << 20  # longest prompt budget a generator builds (its text is held several times over)


def _check_length(length: int) -> int:
    return check_int("length", length, 16, MAX_LENGTH, hint=" (tokens)")


def _check_seed(seed) -> int:
    return check_int("seed", seed, 0)


MAX_EXAMPLES = 1 << 17  # examples one sweep builds (each holds its prompt text and ids)


def check_example_count(count: int) -> int:
    """Refuse sweeps of more than MAX_EXAMPLES examples (time and memory grow with the count)."""
    return check_size("this sweep", count, MAX_EXAMPLES, unit="examples",
                      hint="; ask for fewer per depth / cell / length")


FILL_SLACK_MIN = 64  # tokens: a prompt + answer may fall short of length by at most
FILL_SLACK_SHARE = 0.02  # ... max(FILL_SLACK_MIN, FILL_SLACK_SHARE * length) (one item / filler unit)


def fill_slack(length: int) -> int:
    """How far below ``length`` a generated prompt plus its answer (or budget) may end: the stated
    fill tolerance of every generator (one item or filler unit, at most 2 % of L or 64 tokens)."""
    return max(FILL_SLACK_MIN, int(FILL_SLACK_SHARE * length))


def check_fill(task: str, used: int, length: int, what: str) -> None:
    """Refuse a prompt that falls short of ``length`` by more than :func:`fill_slack`: ``what`` ran
    out (the key space, the haystack ...) before the budget did."""
    if used < length - fill_slack(length):
        raise ValueError(f"length={length}: a {task} prompt holds only {used} tokens "
                         f"({100 * used / length:.0f} %) because {what}; valid is a length up to about "
                         f"{used} tokens for this task (or more {what.split(' ')[0]} where it can be given)")


def unique_answer(rng: np.random.Generator, draw: Callable[[], str], build: Callable[[str], str], answer: str
                  ) -> tuple[str, str]:
    """``(answer, text)`` with the answer occurring exactly once in ``build(answer)``: a drawn answer
    that also occurs elsewhere in the prompt (a repeated value, a key equal to it) is redrawn from
    ``rng`` (a stream of its own, so prompts without such a clash do not change)."""
    text = build(answer)
    for _ in range(1000):
        if text.count(answer) == 1:
            return answer, text
        answer = draw()
        text = build(answer)
    raise ValueError("could not draw an answer that occurs once in the prompt")  # pragma: no cover


def _check_positive(name: str, value) -> int:
    return check_int(name, value, 1)


def _gold(rng: np.random.Generator, n: int, gold_index: int | None, depth: float | None) -> int:
    """Resolve the relevant item's index from an explicit index, a depth in [0, 1], or at random."""
    if gold_index is not None and depth is not None:
        raise ValueError("give gold_index or depth, not both")
    if gold_index is not None:
        if isinstance(gold_index, bool) or not isinstance(gold_index, int | np.integer) or not 0 <= gold_index < n:
            raise ValueError(f"gold_index={gold_index} outside [0, {n - 1}] for {n} items at this length")
        return int(gold_index)
    if depth is not None:
        if not 0.0 <= depth <= 1.0:  # also refuses NaN
            raise ValueError(f"depth={depth} must lie in [0, 1]")
        return _round(depth * (n - 1))
    return int(rng.integers(n))


def _round(x: float) -> int:
    """Round half up (Python's round() rounds half to even)."""
    return int(math.floor(x + 0.5))


def _hex(values: np.ndarray, width: int) -> list[str]:
    return [format(int(v), f"0{width}x") for v in values]


# ----------------------------------------------------------------------------- needle in a haystack

@functools.lru_cache(maxsize=4)
def _read_corpus(path: str) -> tuple[str, ...]:
    return tuple(pathlib.Path(path).read_text(encoding="ascii").split("\f\n"))


def load_corpus(split: str = "train", path: pathlib.Path | str = CORPUS_PATH) -> list[str]:
    """The natural-text corpus as a list of documents (CPython ``pydoc_data.topics``, PSF licence).

    ``split``: "train" (71 topics), "eval" (7 held-out topics: sorted index % 10 == 0, minus "else",
    whose text is identical to the training topic "if") or "all" (79).
    """
    if split not in ("train", "eval", "all"):
        raise ValueError(f"split={split!r}; valid: train, eval, all")
    docs = list(_read_corpus(str(path)))
    if split == "all":
        return docs
    train = [d for i, d in enumerate(docs) if i % 10 != 0]
    if split == "train":
        return train
    seen = set(train)  # topic "else" repeats "if" word for word: keep it out of the held-out split
    return [d for i, d in enumerate(docs) if i % 10 == 0 and d not in seen]




# ----------------------------------------------------------------------------- tokenizer sanity

_PROBES = ("The grass is green.", "0123456789 abcdef XYZ")


def check_tokenizer(tokenizer) -> None:
    """Refuse a tokenizer that cannot size a prompt: it must map two different short texts to
    different ids, and a 21-character text to more than one token (a degenerate tokenizer returning
    one id for every text would give 2-token "prompts" for any length)."""
    try:
        a, b = (list(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in _PROBES)
    except Exception as e:  # noqa: BLE001 - anything not callable like a Hugging Face tokenizer
        raise ValueError(f"tokenizer={type(tokenizer).__name__} cannot encode text like a Hugging Face "
                         f"tokenizer (tokenizer(text, add_special_tokens=False)['input_ids']): {e}") from None
    if a == b or len(b) < 2 or not all(isinstance(i, int | np.integer) for i in a + b):
        raise ValueError(f"tokenizer={type(tokenizer).__name__} is degenerate: {_PROBES[0]!r} -> {a[:8]}, "
                         f"{_PROBES[1]!r} -> {b[:8]}; valid is a tokenizer giving distinct integer ids "
                         "and more than one token for a 21-character text")
