"""Long-context retrieval tasks: seeded, tokenizer-agnostic generators sized in tokens.

Four tasks, each keeping the structure of the paper's templates (docs/CREAM.md, section 9) but with
a vocabulary scaled down for the byte-level tiny model (1 token = 1 byte, window N = 256):

- ``kv_retrieval``  Lost in the Middle key-value retrieval: a JSON-like object of n pairs of short
  **hex** keys/values (4 hex digits each instead of UUIDs, so a pair costs 10 bytes), the gold pair at a
  chosen index, then the query key. ``kv {3fa0:91c2,7be1:0d44,...}\\n7be1:`` -> ``0d44``.
- ``lines_retrieval`` LongChat-Lines: n lines ``line <3-hex id>: <4-digit number>``, then
  ``what is in line <id>? `` -> the number.
- ``passkey``  a 5-digit pass key hidden at a chosen depth of the repeated grass/sky/sun filler.
- ``niah``  needle in a haystack: ``The magic number is <4 digits>.`` inserted at depth d of natural
  text (held-out CPython documentation); ``niah_grid`` gives the length x depth grid.

Every generator takes ``length`` = the token budget L for prompt **plus** answer (so greedy decoding of
the answer stays inside L), fills it with as many items as fit, and returns a ``TaskExample`` whose
``prompt_ids`` come from the given tokenizer (``add_special_tokens=False``, BOS prepended when the
tokenizer has one). Depth is the relative position of the relevant item in [0, 1]; ``gold_pos`` is its
token offset in the prompt. Randomness comes only from ``numpy.random.default_rng(seed)``.

Fixed evaluation sets for the tiny model live in ``data/eval/*.jsonl`` (``load_eval_set``).
"""

from __future__ import annotations

import functools
import json
import math
import pathlib
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

DATA_DIR = pathlib.Path(__file__).resolve().parent.parent / "data"
CORPUS_PATH = DATA_DIR / "corpus" / "pydoc_topics.txt"
EVAL_DIR = DATA_DIR / "eval"
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


MAX_LENGTH = 1 << 20  # longest prompt budget a generator builds (its text is held several times over)


def _check_length(length: int) -> None:
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or not 16 <= length <= MAX_LENGTH:
        raise ValueError(f"length={length!r} is out of range: valid is an integer in [16, {MAX_LENGTH}] (tokens)")


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed={seed!r} is out of range: valid is an integer >= 0")
    return int(seed)


MAX_EXAMPLES = 1 << 17  # examples one sweep builds (each holds its prompt text and ids)


def check_example_count(count: int) -> int:
    """Refuse sweeps of more than MAX_EXAMPLES examples (time and memory grow with the count)."""
    if count > MAX_EXAMPLES:
        raise ValueError(f"this sweep would build {count} examples, above the limit {MAX_EXAMPLES}; "
                         "ask for fewer per depth / cell / length")
    return count


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}={value!r} is out of range: valid is an integer >= 1")
    return int(value)


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
    many as fit; the gold pair sits at ``gold_index`` (or at ``round(depth * (n - 1))``, or at random).
    """
    _check_length(length)
    seed = _check_seed(seed)
    if not 1 <= key_len <= 8 or not 1 <= value_len <= 8:
        raise ValueError(f"key_len={key_len}, value_len={value_len} must lie in [1, 8]")
    if n_pairs is not None and (isinstance(n_pairs, bool) or not isinstance(n_pairs, int | np.integer)
                                or not 1 <= n_pairs <= 16 ** key_len):
        raise ValueError(f"n_pairs={n_pairs!r} is out of range: valid is an integer in [1, {16 ** key_len}] "
                         f"(distinct {key_len}-digit hex keys), or None for as many as fit")
    rng = np.random.default_rng(seed)
    n_max = max(1, length // (key_len + value_len + 2) + 1) if n_pairs is None else n_pairs
    n_max = min(n_max, 16 ** key_len)
    keys = _hex(rng.choice(16 ** key_len, size=n_max, replace=False), key_len)
    values = _hex(rng.integers(0, 16 ** value_len, size=n_max), value_len)
    gold_draw = rng.random()  # fixed draw so that the random gold index does not depend on n
    answer_budget = length - n_answer_tokens(tokenizer, values[0])

    def build(n: int, g: int | None = None) -> str:
        g = min(n - 1, int(gold_draw * n)) if g is None else g
        return kv_text(list(zip(keys[:n], values[:n], strict=True)), keys[g])

    if n_pairs is None:
        n, _ = _largest_fit(lambda n: build(n, n - 1), tokenizer, answer_budget, n_max)
    else:
        n = n_pairs
    if gold_index is None and depth is None:
        g = min(n - 1, int(gold_draw * n))
    else:
        g = _gold(rng, n, gold_index, depth)
    pairs = list(zip(keys[:n], values[:n], strict=True))
    prompt = kv_text(pairs, keys[g])
    ids = encode(tokenizer, prompt)
    if len(ids) + n_answer_tokens(tokenizer, values[g]) > length:
        raise ValueError(f"n_pairs={n} does not fit in length={length} tokens")
    before = KV_PREFIX + KV_SEP.join(f"{k}:{v}" for k, v in pairs[:g]) + (KV_SEP if g else "")
    return TaskExample("kv", prompt, values[g], ids, int(length), g / max(n - 1, 1), g, n,
                       len(encode(tokenizer, before)), int(seed), depth, meta={"pairs": pairs})


# ----------------------------------------------------------------------------- LongChat-Lines

def lines_text(lines: Sequence[tuple[str, str]], query: str) -> str:
    body = "".join(f"line {i}: {v}\n" for i, v in lines)
    return f"{LINES_PREFIX}{body}what is in line {query}? "


def lines_retrieval(tokenizer, length: int, *, gold_index: int | None = None,
                    depth: float | None = None, seed: int = 0) -> TaskExample:
    """LongChat-Lines-style retrieval: ``line <id>: <number>`` lines, ask for one line's number.

    Line ids are distinct 3-digit hex strings, numbers 4-digit decimals (1000-9999), scaled down from
    LongChat's word ids / REGISTER_CONTENT for the byte-level tiny model. Score: first number generated.
    """
    _check_length(length)
    rng = np.random.default_rng(_check_seed(seed))
    n_max = min(16 ** 3, max(1, length // 15 + 1))
    ids_ = _hex(rng.choice(16 ** 3, size=n_max, replace=False), 3)
    nums = [str(v) for v in rng.integers(1000, 10000, size=n_max)]
    budget = length - n_answer_tokens(tokenizer, nums[0])
    n, _ = _largest_fit(lambda n: lines_text(list(zip(ids_[:n], nums[:n], strict=True)), ids_[n - 1]),
                        tokenizer, budget, n_max)
    g = _gold(rng, n, gold_index, depth)
    lines = list(zip(ids_[:n], nums[:n], strict=True))
    prompt = lines_text(lines, ids_[g])
    before = LINES_PREFIX + "".join(f"line {i}: {v}\n" for i, v in lines[:g])
    return TaskExample("lines", prompt, nums[g], encode(tokenizer, prompt), int(length),
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


def niah(tokenizer, length: int, *, depth: float | None = None, seed: int = 0,
         haystack: Sequence[str] | None = None) -> TaskExample:
    """Needle in a haystack: ``The magic number is <4 digits>.`` at relative ``depth`` of natural text.

    The haystack is a contiguous slice (random start, seeded) of the held-out corpus documents joined
    (or of ``haystack``), cut at word boundaries to fill ``length`` tokens; the needle goes before
    filler word ``round(depth * n_words)``. Score: the first integer generated == the number.
    """
    target = depth
    rng, key, depth = _needle_draws(length, seed, depth, digits=4)
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
    return [niah(tokenizer, int(L), depth=float(d), seed=seed + i)
            for L in lengths for d in depths for i in range(n_per_cell)]


GENERATORS = {"kv": kv_retrieval, "lines": lines_retrieval, "passkey": passkey, "niah": niah}


def depth_sweep(task: str, tokenizer, length: int, depths: Sequence[float], *, n_per_depth: int = 10,
                seed: int = 0) -> list[TaskExample]:
    """Examples of ``task`` at each depth, ``n_per_depth`` seeds each (seed, seed+1, ...)."""
    if task not in GENERATORS:
        raise ValueError(f"task={task!r}; valid: {', '.join(GENERATORS)}")
    _check_positive("n_per_depth", n_per_depth)
    if not len(depths):
        raise ValueError("depths must not be empty")
    check_example_count(n_per_depth * len(depths))
    return [GENERATORS[task](tokenizer, int(length), depth=float(d), seed=seed + i)
            for d in depths for i in range(n_per_depth)]


# ----------------------------------------------------------------------------- scoring

_INT = re.compile(r"\d+")


def score(task: str, generated: str, answer: str) -> bool:
    """Is ``generated`` (the decoded continuation) correct? kv: the value appears in it (kv_uuid:
    case-insensitive); lines / passkey / niah (and their chat forms): the first integer in it equals
    the answer's; RULER-style tasks: every required string of the answer occurs in it
    (:func:`ruler_score`)."""
    if task in RULER_TASKS:
        return ruler_score(task, generated, answer)
    if task == "kv":
        return answer.strip() in generated
    if task in SUBSTRING_SCORED:
        return answer.strip().lower() in generated.lower()
    if task in ("lines", "passkey", "niah") or task in FIRST_INTEGER_SCORED:
        m = _INT.search(generated)
        return m is not None and m.group() == answer.strip()
    raise ValueError(f"task={task!r}; valid: {', '.join(TASKS + CHAT_TASKS)}")


# ----------------------------------------------------------------------------- fixed evaluation sets

def save_eval_set(examples: Sequence[TaskExample], path: pathlib.Path | str) -> None:
    """Write examples as JSONL (text only: prompt ids are re-derived by the loading tokenizer)."""
    with open(path, "w", encoding="ascii") as f:
        for ex in examples:
            f.write(json.dumps(ex.record()) + "\n")


def eval_set_names() -> list[str]:
    return sorted(p.stem for p in EVAL_DIR.glob("*.jsonl"))


def load_eval_set(name: str, tokenizer=None) -> list[TaskExample]:
    """A fixed evaluation set shipped in ``data/eval/<name>.jsonl`` (see ``eval_set_names()``).

    Prompt ids are rebuilt with ``tokenizer`` (default: the byte tokenizer the sets were made for;
    lengths and gold positions are exact only for it).
    """
    path = EVAL_DIR / f"{name}.jsonl"
    if not path.is_file():
        raise ValueError(f"eval set name={name!r} not found; valid: {', '.join(eval_set_names())}")
    if tokenizer is None:
        from creamviz.models import byte_tokenizer

        tokenizer = byte_tokenizer()
    out = []
    for line in path.read_text(encoding="ascii").splitlines():
        r = json.loads(line)
        r.pop("n_tokens", None)
        out.append(TaskExample(prompt_ids=encode(tokenizer, r["prompt"]), **r))
    return out


# lengths / depths of the shipped sets (tiny model: N = 256, target L = 2048)
EVAL_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
EVAL_LENGTHS = (256, 512, 1024, 2048)


def build_eval_sets(out_dir: pathlib.Path | str = EVAL_DIR, tokenizer=None, *, n_per_cell: int = 20,
                    seed: int = 10_000) -> dict[str, int]:
    """(Re)build the fixed evaluation sets; seeds start at 10 000 (pre-training uses seeds < 10 000).

    - ``kv_L{L}``: key-value retrieval, L in EVAL_LENGTHS, ``n_per_cell`` examples per depth;
    - ``lines_L{L}``, ``passkey_L{L}`` likewise; ``niah``: the full length x depth grid.
    Returns {name: number of examples}.
    """
    if tokenizer is None:
        from creamviz.models import byte_tokenizer

        tokenizer = byte_tokenizer()
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for i, task in enumerate(("kv", "lines", "passkey")):
        for L in EVAL_LENGTHS:
            ex = depth_sweep(task, tokenizer, L, EVAL_DEPTHS, n_per_depth=n_per_cell,
                             seed=seed + 1000 * i + L)
            save_eval_set(ex, out_dir / f"{task}_L{L}.jsonl")
            sizes[f"{task}_L{L}"] = len(ex)
    ex = niah_grid(tokenizer, EVAL_LENGTHS, EVAL_DEPTHS, n_per_cell=max(1, n_per_cell // 2),
                   seed=seed + 5000)
    save_eval_set(ex, out_dir / "niah.jsonl")
    sizes["niah"] = len(ex)
    return sizes


# ============================================================================= RULER-style tasks
# Harder, non-saturating retrieval tasks after RULER (Hsieh et al., 2024), scaled to the byte-level
# tiny model and sized in tokens like the tasks above. Each answer is a set of required strings;
# a generation is correct when it contains every one of them (RULER's "all" scoring):
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


def required_strings(task: str, answer: str) -> list[str]:
    """The strings a generation must contain to be scored correct (RULER-style tasks)."""
    if task == "kv_multiquery":
        return [s for s in answer.split(KV_MQ_SEP) if s]
    if task in RULER_TASKS:
        return answer.split()
    raise ValueError(f"task={task!r}; valid: {', '.join(RULER_TASKS)}")


def ruler_score(task: str, generated: str, answer: str) -> bool:
    """RULER scoring: every required string of ``answer`` occurs in ``generated``."""
    return all(s in generated for s in required_strings(task, answer))


def ruler_partial_score(task: str, generated: str, answer: str) -> float:
    """Share of the required strings of ``answer`` that occur in ``generated`` (RULER's
    ``string_match_all`` per example: partial credit; :func:`ruler_score` asks for all of them)."""
    req = required_strings(task, answer)
    return sum(s in generated for s in req) / len(req)


def _check_count(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise ValueError(f"{name}={value!r} is out of range: valid is an integer in [{low}, {high}]")
    return int(value)


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

    budget = length - n_answer_tokens(tokenizer, answer)
    n, ids = _largest_fit(build, tokenizer, budget, len(words), n_min=0)
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


def _int_draw(rng: np.random.Generator, digits: int) -> Callable[[], str]:
    return lambda: str(int(rng.integers(10 ** (digits - 1), 10 ** digits)))


def multikey_niah(tokenizer, length: int, *, n_keys: int = 4, depth: float | None = None, seed: int = 0,
                  haystack: Sequence[str] | None = None) -> TaskExample:
    """Multi-key needle in a haystack: ``n_keys`` needles with distinct 4-hex keys and 4-digit numbers;
    the asked needle sits at relative ``depth`` (random if None), the others at random depths."""
    _check_length(length)
    n_keys = _check_count("n_keys", n_keys, 1, 16)
    rng = np.random.default_rng(seed)
    words = _haystack_words(rng, length, haystack)
    text = "".join(words)
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
    _check_length(length)
    n_values = _check_count("n_values", n_values, 1, 16)
    rng = np.random.default_rng(seed)
    words = _haystack_words(rng, length, haystack)
    text = "".join(words)
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
    _check_length(length)
    n_hops = _check_count("n_hops", n_hops, 1, 8)
    n_chains = _check_count("n_chains", n_chains, 1, 8)
    rng = np.random.default_rng(seed)
    words = _haystack_words(rng, length, haystack)
    text = "".join(words)
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
    n_queries = _check_count("n_queries", n_queries, 1, 16)
    rng = np.random.default_rng(seed)
    n_max = max(n_queries, length // 10 + 1)
    drawn = _hex(rng.choice(16 ** 4, size=2 * n_max, replace=False), 4)
    keys, values = drawn[:n_max], drawn[n_max:]
    first, rest = float(rng.random()) if depth is None else depth, rng.random(n_queries - 1)
    if not 0.0 <= first <= 1.0:
        raise ValueError(f"depth={first} must lie in [0, 1]")

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
    idx = asked(n)
    answer = KV_MQ_SEP.join(values[i] for i in idx)
    before = KV_PREFIX + KV_SEP.join(f"{k}:{v}" for k, v in zip(keys[:idx[0]], values[:idx[0]], strict=True))
    return TaskExample("kv_multiquery", build(n), answer, ids, int(length), idx[0] / max(n - 1, 1), idx[0], n,
                       len(encode(tokenizer, before + (KV_SEP if idx[0] else ""))), int(seed), depth,
                       meta={"asked": idx})


RULER_GENERATORS = {"multikey_niah": multikey_niah, "multivalue_niah": multivalue_niah,
                    "variable_tracking": variable_tracking, "kv_multiquery": kv_multiquery}
RULER_EVAL_LENGTH = 2048  # L of the shipped RULER-style sets (the tiny model's target length)
STUDY_KV_SET = "kv100_L2048"  # key-value retrieval at L, 100 prompts per depth (the study's main set)


def ruler_eval_set_name(task: str, length: int = RULER_EVAL_LENGTH) -> str:
    return f"{task}_L{length}"


def build_ruler_eval_sets(out_dir: pathlib.Path | str = EVAL_DIR, tokenizer=None, *, n: int = 100,
                          length: int = RULER_EVAL_LENGTH, seed: int = 30_000) -> dict[str, int]:
    """(Re)build the fixed sets of the RULER-style tasks at ``length`` (``n`` prompts each, seeds
    ``seed + 1000 * task_index + i``) and the study's key-value set ``kv100_L2048`` (100 prompts per
    depth in EVAL_DEPTHS, seeds from 40 000; the same 100 contexts at every depth).
    Returns {name: number of examples}."""
    if tokenizer is None:
        from creamviz.models import byte_tokenizer

        tokenizer = byte_tokenizer()
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for t, (task, gen) in enumerate(RULER_GENERATORS.items()):
        ex = [gen(tokenizer, int(length), seed=seed + 1000 * t + i) for i in range(n)]
        save_eval_set(ex, out_dir / f"{ruler_eval_set_name(task, length)}.jsonl")
        sizes[ruler_eval_set_name(task, length)] = len(ex)
    ex = depth_sweep("kv", tokenizer, int(length), EVAL_DEPTHS, n_per_depth=100, seed=40_000)
    save_eval_set(ex, out_dir / f"kv100_L{length}.jsonl")
    sizes[f"kv100_L{length}"] = len(ex)
    return sizes


# ============================================================================= real-model tasks
# The paper's own templates for real (sub-word, instruction-tuned) models, rendered through the
# tokenizer's chat template and sized in that tokenizer's tokens. Independent of the byte-scaled
# tasks above except for the shared passkey filler / needle and the held-out corpus.
#
# - ``kv_uuid``       Lost in the Middle key-value retrieval verbatim (Liu et al. 2023): a JSON object of
#   n UUID -> UUID pairs (one per line), "Key: "<k>"\nCorresponding value:"; correct when the gold
#   value appears in the answer (case-insensitive substring). For one seed the n pairs are the same at
#   every depth: only which key is asked (the gold pair's index g = round(depth (n - 1))) changes.
# - ``passkey_chat``  passkey retrieval: the user turn holds the filler with the needle and asks for
#   the pass key; the assistant turn is opened with "The pass key is" (prefilled); first integer.
# - ``niah_chat``     needle in a haystack: a 7-digit magic number in held-out natural text, same
#   prefilled answer opening "The magic number is"; first integer.
#
# ``TaskExample.prompt`` is the rendered chat text (special tokens written out); its ids are
# ``tokenizer(prompt, add_special_tokens=False)`` (equal to ``apply_chat_template(..., tokenize=True)``).
# A tokenizer without a chat template gets the plain user text (BOS prepended, as ``encode``).
# ``meta`` holds the character spans of the relevant item and of the question, from which
# ``chat_token_spans`` gives exact token spans through the tokenizer's offset mapping.

CHAT_TASKS = ("kv_uuid", "passkey_chat", "niah_chat")
SUBSTRING_SCORED = {"kv_uuid"}  # scored like the Lost in the Middle code: value.lower() in answer.lower()
FIRST_INTEGER_SCORED = {"passkey_chat", "niah_chat"}  # first integer generated == the key
LIM_KV_TEMPLATE = ("Extract the value corresponding to the specified key in the JSON object below.\n\n"
                   "JSON data:\n{records}\n\nKey: \"{key}\"\nCorresponding value:")
LIM_KV_QUESTION = "Key: \""  # the question starts here (after the JSON object)
PASSKEY_CHAT_QUESTION = "What is the pass key?"
PASSKEY_CHAT_OPENING = "The pass key is"  # assistant-turn prefill
NIAH_CHAT_QUESTION = "What is the magic number?"
NIAH_CHAT_OPENING = "The magic number is"
REAL_EVAL_DIR = EVAL_DIR / "real"  # fixed sets for the real model's tokenizer (SmolLM2)
REAL_EVAL_LENGTHS = (2048, 4096)  # inside SmolLM2's window N = 8192
REAL_EVAL_SEED = 30_000  # first seed of the real-model fixed sets


def lim_kv_records(pairs: Sequence[tuple[str, str]]) -> str:
    """The JSON object of the Lost in the Middle prompt: ``{"k": "v",\\n "k": "v", ...}`` (one pair a line)."""
    if not pairs:
        raise ValueError("pairs must not be empty")
    return "{" + ",\n ".join(f'"{k}": "{v}"' for k, v in pairs) + "}"


def _uuid(rng: np.random.Generator) -> str:
    """A random version-4 UUID string from ``rng`` (122 random bits)."""
    import uuid

    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_chat(tokenizer, user: str, opening: str = "", *, chat: bool | None = None) -> tuple[str, int]:
    """``(text, offset)``: ``user`` as one user turn through the chat template with the generation
    prompt, then ``opening`` (an assistant-turn prefill); ``offset`` is where ``user`` starts in
    ``text``. ``chat=None`` uses the template when the tokenizer has one; ``chat=False`` (or no
    template) gives ``user + " " + opening`` as plain text."""
    use_chat = _has_chat_template(tokenizer) if chat is None else chat
    if use_chat and not _has_chat_template(tokenizer):
        raise ValueError("chat=True but the tokenizer has no chat template")
    if not use_chat:
        return (user + (" " + opening if opening else "")), 0
    text = tokenizer.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True,
                                         tokenize=False)
    offset = text.rfind(user)
    if offset < 0:
        raise ValueError("the chat template does not keep the user message verbatim")
    return text + opening, offset


def encode_chat(tokenizer, text: str, chat: bool) -> list[int]:
    """Token ids of a rendered prompt: the chat text as is (its special tokens are in it), or the plain
    text with BOS (``encode``)."""
    if chat:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return encode(tokenizer, text)


def chat_token_spans(tokenizer, example: TaskExample) -> tuple[int, int, int]:
    """``(needle_start, needle_stop, question_start)``: token indices in ``example.prompt_ids`` of the
    relevant item (tokens overlapping its characters) and of the first token of the question, from the
    tokenizer's offset mapping (token counts of text prefixes for a tokenizer without one, exact for
    byte tokenizers); chat-task examples only."""
    meta = example.meta
    if "needle_chars" not in meta:
        raise ValueError(f"example of task {example.task!r} has no character spans (not a chat task)")
    a, b = meta["needle_chars"]
    q = meta["question_char"]
    try:
        enc = tokenizer(example.prompt, add_special_tokens=False, return_offsets_mapping=True)
        offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)  # (T', 2) char spans
    except (TypeError, NotImplementedError, KeyError):  # no offset mapping: count prefix tokens
        def count(text: str) -> int:
            return len(encode_chat(tokenizer, text, meta["chat"]))

        return count(example.prompt[:a]), count(example.prompt[:b]), count(example.prompt[:q])
    shift = len(example.prompt_ids) - len(offsets)  # a BOS prepended by encode() has no characters
    ends, starts = offsets[:, 1], offsets[:, 0]
    first = int(np.argmax(ends > a))
    last = int(np.nonzero(starts < b)[0][-1])
    question = int(np.argmax(ends > q))
    return first + shift, last + 1 + shift, question + shift


def _chat_example(task, tokenizer, text, chat, answer, length, depth, g, n, seed, target, needle_chars,
                  question_char, meta=None) -> TaskExample:
    ids = encode_chat(tokenizer, text, chat)
    if len(ids) + n_answer_tokens(tokenizer, answer) > length:
        raise ValueError(f"the {task} prompt ({len(ids)} tokens) plus its answer does not fit in "
                         f"length={length}")
    ex = TaskExample(task, text, answer, ids, int(length), depth, g, n, 0, int(seed), target,
                     meta=dict(meta or {}, chat=bool(chat), needle_chars=tuple(needle_chars),
                               question_char=int(question_char)))
    ex.gold_pos = chat_token_spans(tokenizer, ex)[0]
    return ex


def _fit_count(build: Callable[[int], str], tokenizer, chat: bool, budget: int, n_max: int,
               n_min: int = 1) -> int:
    """Largest n in [n_min, n_max] whose rendered prompt ``build(n)`` has at most ``budget`` tokens
    (doubling from n_min, then bisection: no prompt much longer than twice the budget is tokenized)."""
    def fits(n: int) -> bool:
        return len(encode_chat(tokenizer, build(n), chat)) <= budget

    lo, hi, best = n_min, n_max, None
    probe = max(1, n_min)
    while probe < n_max and fits(probe):
        lo, probe = probe, probe * 2
    hi = min(n_max, probe)
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(mid):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    if best is None:
        need = len(encode_chat(tokenizer, build(n_min), chat))
        raise ValueError(f"length too small: the prompt needs at least {need} tokens plus the answer, "
                         f"but the budget leaves {budget}")
    return best


def _token_counts(tokenizer, texts: list[str]) -> list[int]:
    """Token counts of ``texts`` (no special tokens): one batched call when the tokenizer takes lists."""
    try:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    except (TypeError, AttributeError):
        return [n_answer_tokens(tokenizer, t) for t in texts]


def kv_uuid(tokenizer, length: int, *, gold_index: int | None = None, depth: float | None = None,
            n_pairs: int | None = None, seed: int = 0, chat: bool | None = None) -> TaskExample:
    """Lost in the Middle key-value retrieval in the paper's form, sized to ``length`` real tokens.

    ``n`` UUID -> UUID pairs (``n_pairs``, default: as many as fit so that prompt + the longest
    value fit in ``length`` with the longest key asked), the gold pair at ``gold_index``, at
    ``round(depth (n - 1))`` or at random. The pairs depend only on ``seed`` (pair i is the i-th draw),
    and ``n`` does not depend on the gold index, so one seed gives the same JSON object at every depth.
    """
    _check_length(length)
    use_chat = _has_chat_template(tokenizer) if chat is None else bool(chat)
    rng = np.random.default_rng(seed)
    n_max = max(2, length // 16) if n_pairs is None else int(n_pairs)  # a pair costs > 16 tokens
    pairs = [(_uuid(rng), _uuid(rng)) for _ in range(n_max)]
    if len({k for k, _ in pairs}) != n_max:
        raise ValueError(f"seed={seed} drew a repeated UUID key")  # 2^-122 odds; never silently
    gold_draw = rng.random()  # for a random gold index, drawn after the pairs

    def user(n: int, key: str) -> str:
        return LIM_KV_TEMPLATE.format(records=lim_kv_records(pairs[:n]), key=key)

    if n_pairs is None:  # size for the costliest question and answer, so n does not depend on g
        keys = [k for k, _ in pairs]
        worst_key = keys[int(np.argmax(_token_counts(tokenizer, [f'{LIM_KV_QUESTION}{k}"' for k in keys])))]
        worst_answer = max(_token_counts(tokenizer, [v for _, v in pairs]))
        n = _fit_count(lambda n: render_chat(tokenizer, user(n, worst_key), chat=use_chat)[0], tokenizer,
                       use_chat, length - worst_answer - 2, n_max, n_min=2)  # 2 tokens of slack
    else:
        if n_pairs < 2:
            raise ValueError(f"n_pairs={n_pairs} must be >= 2")
        n = int(n_pairs)
    if gold_index is None and depth is None:
        g = min(n - 1, int(gold_draw * n))
    else:
        g = _gold(rng, n, gold_index, depth)
    key, value = pairs[g]
    content = user(n, key)
    text, offset = render_chat(tokenizer, content, chat=use_chat)
    record = f'"{key}": "{value}"'
    a = offset + content.index(record)
    q = offset + content.rindex(LIM_KV_QUESTION)
    return _chat_example("kv_uuid", tokenizer, text, use_chat, value, length, g / max(n - 1, 1), g, n, seed,
                         depth, (a, a + len(record)), q, meta={"pairs": pairs[:n]})


def _needle_chat(task: str, tokenizer, length: int, *, depth, seed, chat, digits: int, needle_fmt: str,
                 prefix: str, units: Callable[[np.random.Generator], Sequence[str]], joiner: str,
                 question: str, opening: str) -> TaskExample:
    """Shared body of passkey_chat / niah_chat: filler ``units(rng)`` (sentences or words) with the
    needle before unit ``round(depth * n)``, as many units as fit."""
    target = depth
    rng, key, depth = _needle_draws(length, seed, depth, digits=digits)
    units = units(rng)
    use_chat = _has_chat_template(tokenizer) if chat is None else bool(chat)
    needle = needle_fmt.format(k=key)
    answer = " " + key

    def user(n: int) -> tuple[str, int]:
        cut = _round(depth * n)
        before = prefix + joiner.join(units[:cut]).rstrip()
        after = joiner.join(units[cut:n]).rstrip()
        head = before + (" " if cut else "")  # the needle follows the prefix's newline or a unit
        return head + needle + (" " if after else "") + after + "\n\n" + question, len(head)

    budget = length - n_answer_tokens(tokenizer, answer)
    n = _fit_count(lambda n: render_chat(tokenizer, user(n)[0], opening, chat=use_chat)[0], tokenizer,
                   use_chat, budget, len(units), n_min=0)
    content, at = user(n)
    text, offset = render_chat(tokenizer, content, opening, chat=use_chat)
    cut = _round(depth * n)
    a = offset + at
    q = offset + content.rindex(question)
    return _chat_example(task, tokenizer, text, use_chat, answer, length, cut / max(n, 1), cut, n, seed,
                         target, (a, a + len(needle)), q, meta={"key": key})


def passkey_chat(tokenizer, length: int, *, depth: float | None = None, seed: int = 0,
                 chat: bool | None = None) -> TaskExample:
    """Passkey retrieval through the chat template (paper's filler and needle, a 5-digit key): the
    needle after filler sentence ``round(depth * n)``; the answer opening "The pass key is" prefilled."""
    n_max = max(1, length // 4)  # a filler sentence costs >= 4 tokens
    units = [PASSKEY_FILLER[i % len(PASSKEY_FILLER)] for i in range(n_max)]
    return _needle_chat("passkey_chat", tokenizer, length, depth=depth, seed=seed, chat=chat, digits=5,
                        needle_fmt=PASSKEY_NEEDLE, prefix=PASSKEY_PREFIX, units=lambda rng: units, joiner=" ",
                        question=PASSKEY_CHAT_QUESTION, opening=PASSKEY_CHAT_OPENING)


def niah_chat(tokenizer, length: int, *, depth: float | None = None, seed: int = 0,
              chat: bool | None = None, haystack: Sequence[str] | None = None) -> TaskExample:
    """Needle in a haystack through the chat template: "The magic number is <7 digits>." before word
    ``round(depth * n)`` of a seeded slice of the held-out corpus (or ``haystack``); the answer
    opening "The magic number is" prefilled."""
    text = "\n".join(haystack if haystack is not None else load_corpus("eval"))
    words = re.findall(r"\S+\s*", text)  # each word keeps its trailing white space
    n_max = min(len(words), length)  # a word is at least one token

    def units(rng):  # a contiguous slice from a seeded start (drawn after the key and depth)
        start = int(rng.integers(0, max(1, len(words) - n_max)))
        return words[start:start + n_max]

    return _needle_chat("niah_chat", tokenizer, length, depth=depth, seed=seed, chat=chat, digits=7,
                        needle_fmt=NIAH_NEEDLE.strip(), prefix="", units=units, joiner="",
                        question=NIAH_CHAT_QUESTION, opening=NIAH_CHAT_OPENING)


GENERATORS.update({"kv_uuid": kv_uuid, "passkey_chat": passkey_chat, "niah_chat": niah_chat})


# ----------------------------------------------------------------------------- real-model fixed sets

def save_chat_eval_set(examples: Sequence[TaskExample], path: pathlib.Path | str) -> None:
    """JSONL of chat-task examples: the ``record()`` fields plus ``chat`` and the character spans
    (prompt text only; ids, token spans and ``gold_pos`` are re-derived by the loading tokenizer)."""
    with open(path, "w", encoding="utf-8") as f:
        for ex in examples:
            r = ex.record()
            r.update(chat=ex.meta["chat"], needle_chars=list(ex.meta["needle_chars"]),
                     question_char=ex.meta["question_char"])
            f.write(json.dumps(r, ensure_ascii=True) + "\n")


def real_eval_set_names() -> list[str]:
    return sorted(p.stem for p in REAL_EVAL_DIR.glob("*.jsonl"))


def load_chat_eval_set(name: str, tokenizer) -> list[TaskExample]:
    """A fixed real-model set from ``data/eval/real/<name>.jsonl`` (``real_eval_set_names()``), its
    prompt ids rebuilt with ``tokenizer`` (the sets are sized for SmolLM2's tokenizer)."""
    path = REAL_EVAL_DIR / f"{name}.jsonl"
    if not path.is_file():
        raise ValueError(f"real eval set name={name!r} not found; valid: {', '.join(real_eval_set_names())}")
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        r.pop("n_tokens", None)
        meta = {"chat": r.pop("chat"), "needle_chars": tuple(r.pop("needle_chars")),
                "question_char": r.pop("question_char")}
        out.append(TaskExample(prompt_ids=encode_chat(tokenizer, r["prompt"], meta["chat"]), meta=meta, **r))
    return out


def build_real_eval_sets(tokenizer, out_dir: pathlib.Path | str = REAL_EVAL_DIR, *,
                         lengths: Sequence[int] = REAL_EVAL_LENGTHS, n_per_depth: int = 10,
                         seed: int = REAL_EVAL_SEED) -> dict[str, int]:
    """(Re)build the real-model fixed sets with ``tokenizer`` (SmolLM2's for the shipped files).

    ``kv_uuid_L{L}``: ``n_per_depth`` seeds at each of EVAL_DEPTHS (one JSON object per seed, the
    asked key moving); ``passkey_chat_L{L}`` / ``niah_chat_L{L}``: ``n_per_depth // 2`` per depth.
    Seeds: ``seed + 1000 i + L`` for the i-th task. Returns {name: number of examples}.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for i, task in enumerate(CHAT_TASKS):
        per = n_per_depth if task == "kv_uuid" else max(1, n_per_depth // 2)
        for L in lengths:
            ex = depth_sweep(task, tokenizer, L, EVAL_DEPTHS, n_per_depth=per, seed=seed + 1000 * i + L)
            save_chat_eval_set(ex, out_dir / f"{task}_L{L}.jsonl")
            sizes[f"{task}_L{L}"] = len(ex)
    return sizes
