"""Real-model (sub-word, chat) tasks in the paper's own templates."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from creamviz.tasks.byte import (
    NIAH_NEEDLE,
    PASSKEY_FILLER,
    PASSKEY_NEEDLE,
    PASSKEY_PREFIX,
    _needle_draws,
)
from creamviz.tasks.common import (
    TaskExample,
    _check_length,
    _check_seed,
    _gold,
    _round,
    check_tokenizer,
    encode,
    load_corpus,
    n_answer_tokens,
)
from creamviz.validation import check_int

# ============================================================================= real-model tasks
# The paper's own templates for real (sub-word, instruction-tuned) models, rendered through the
# tokenizer's chat template and sized in that tokenizer's tokens. Independent of the byte-scaled
# tasks above except for the shared passkey filler / needle and the held-out corpus.
#
# - ``kv_uuid``       Lost in the Middle's key-value *prompt template* (Liu et al. 2023): a JSON object of
#   n UUID -> UUID pairs (one per line), "Key: "<k>"\nCorresponding value:"; correct when the gold
#   value appears in the answer (case-insensitive substring). Not LitM's design: n fills the length
#   and, for one seed, a different key is asked at each depth (g = round(depth (n - 1))); LitM's own
#   design (fixed 75 / 140 / 300 pairs, the gold record moved, the same key) is ``litm.litm_kv``.
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
    """Key-value retrieval in Lost in the Middle's prompt template, sized to fill ``length`` real tokens
    (creamviz's design; :func:`creamviz.tasks.litm.litm_kv` is LitM's own).

    ``n`` UUID -> UUID pairs (``n_pairs``, default: as many as fit so that prompt + the longest
    value fit in ``length`` with the longest key asked), the gold pair at ``gold_index``, at
    ``round(depth (n - 1))`` or at random. The pairs depend only on ``seed`` (pair i is the i-th draw),
    and ``n`` does not depend on the gold index, so one seed gives the same JSON object at every depth.
    """
    _check_length(length)
    seed = _check_seed(seed)
    check_tokenizer(tokenizer)
    if n_pairs is not None:  # a pair costs more than 16 tokens: more than length // 16 cannot fit
        n_pairs = check_int("n_pairs", n_pairs, 2, max(2, length // 16),
                            hint=f" (a UUID pair costs more than 16 tokens of length={length})")
    use_chat = _has_chat_template(tokenizer) if chat is None else bool(chat)
    rng = np.random.default_rng(seed)
    n_max = max(2, length // 16) if n_pairs is None else n_pairs
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
        n = n_pairs
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
    check_tokenizer(tokenizer)
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


