"""Lost in the Middle key-value retrieval and LongChat-Lines as the peers run them.

- ``litm_kv``  Liu et al. (2023), nelson-liu/lost-in-the-middle: a JSON object of a **fixed** number
  of UUID -> UUID pairs (75 / 140 / 300, the released data files), the gold record *moved* to index
  ``g`` (the other records keep their order) and the **same key** asked at every ``g``. The gold
  indices are the ones the peers' scripts pass: 140 keys -> 0 / 34 / 69 / 104 / 139 (LitM's
  EXPERIMENTS.md and CREAM's ``eval_lost_in_the_middle.sh``), 75 keys -> 0 / 18 / 37 / 54 / 74 (CREAM's
  script; note 54, not floor(0.75 * 74) = 55); other depths and 300 keys: ``floor(depth * (n - 1))``.
  Scored like ``evaluate_kv_responses.py``: ``value.lower() in answer.lower()``. Budgets: 100 new
  tokens (LitM's ``--max-new-tokens`` default) or 50 (CREAM's script); the example does not pick one,
  the evaluation does (:data:`creamviz.tasks.scoring.TASK_SPECS`). ``n_pairs="fill"`` fills ``length``
  instead (a labelled creamviz option, not the peers' design).
- ``longchat_lines``  LongChat-Lines as CREAM's ``longchat_lines/eval.py`` scores it: LongChat's
  header, lines ``line <adjective-noun>: REGISTER_CONTENT is <n>`` (n in [1, 50000], distinct), the
  question "Tell me what is the <REGISTER_CONTENT> in line <id>? I need the number."; the first run of
  digits of the answer compared as an integer; 35 new tokens at most, at least 5.
"""

from __future__ import annotations

import numpy as np

from creamviz.tasks.common import (
    TaskExample,
    _check_length,
    _check_seed,
    check_tokenizer,
)
from creamviz.tasks.real import (
    LIM_KV_QUESTION,
    LIM_KV_TEMPLATE,
    _fit_count,
    _has_chat_template,
    _uuid,
    encode_chat,
    lim_kv_records,
    render_chat,
)
from creamviz.validation import check_int, check_real

LITM_PAIRS = (75, 140, 300)  # the released kv-retrieval data files
LITM_GOLD_INDICES = {75: (0, 18, 37, 54, 74), 140: (0, 34, 69, 104, 139)}  # the peers' scripts
LITM_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the depths those indices stand for
MAX_LITM_PAIRS = 5000  # about 250K tokens of UUIDs

LINES_HEADER = ("Below is a record of lines I want you to remember. Each line begins with 'line <line index>' "
                "and contains a '<REGISTER_CONTENT>' at the end of the line as a numerical value. For each "
                "line index, memorize its corresponding <REGISTER_CONTENT>. At the end of the record, I will "
                "ask you to retrieve the corresponding <REGISTER_CONTENT> of a certain line index. Now the "
                "record start:\n\n")
LINES_LINE = "line {id}: REGISTER_CONTENT is <{value}>\n"
LINES_QUESTION = "\nNow the record is over. Tell me what is the <REGISTER_CONTENT> in line {id}? I need the number."
LINES_MAX_VALUE = 50000  # LongChat draws REGISTER_CONTENT in [1, 50000]


def litm_gold_index(n: int, depth: float) -> int:
    """The gold index for ``depth`` among ``n`` records: the peers' index where their scripts give one,
    else ``floor(depth * (n - 1))``."""
    depth = check_real("depth", depth, 0.0, 1.0)
    table = LITM_GOLD_INDICES.get(n)
    if table is not None and depth in LITM_DEPTHS:
        return table[LITM_DEPTHS.index(depth)]
    return int(np.floor(depth * (n - 1)))


def litm_kv(tokenizer, *, n_pairs: int | str = 75, gold_index: int | None = None, depth: float | None = None,
            seed: int = 0, length: int | None = None, chat: bool | None = None) -> TaskExample:
    """Lost in the Middle key-value retrieval, verbatim: ``n_pairs`` UUID pairs (75 / 140 / 300 as
    released, any count in [2, 5000], or ``"fill"`` for as many as fit ``length``), the gold record
    moved to ``gold_index`` (or :func:`litm_gold_index` of ``depth``; neither: its drawn place).

    One seed gives one object and one asked key; only the gold record's index changes with ``depth``.
    ``length`` (optional, tokens): the prompt must leave room for 100 new tokens (LitM's budget)."""
    seed = _check_seed(seed)
    check_tokenizer(tokenizer)
    if length is not None:
        length = _check_length(length)
    fill = n_pairs == "fill"
    if fill and length is None:
        raise ValueError("n_pairs='fill' needs length (tokens) to fill")
    if not fill:
        n_pairs = check_int("n_pairs", n_pairs, 2, MAX_LITM_PAIRS, hint=" (or 'fill')")
    if gold_index is not None and depth is not None:
        raise ValueError("give gold_index or depth, not both")
    use_chat = _has_chat_template(tokenizer) if chat is None else bool(chat)
    rng = np.random.default_rng(seed)
    n_draw = n_pairs if not fill else min(MAX_LITM_PAIRS, max(2, length // 30))  # a record is > 30 tokens
    pairs = [(_uuid(rng), _uuid(rng)) for _ in range(n_draw)]
    if len({x for p in pairs for x in p}) != 2 * n_draw:
        raise ValueError(f"seed={seed} drew a repeated UUID")  # 2^-122 odds; never silently
    original = int(rng.integers(n_draw))  # LitM's data: the asked record sits at a random index

    def records(n: int, g: int) -> list[tuple[str, str]]:
        kept = pairs[:n]
        gold_pair = kept[min(original, n - 1)]
        rest = [p for p in kept if p != gold_pair]
        return rest[:g] + [gold_pair] + rest[g:]

    def user(n: int, g: int) -> str:
        recs = records(n, g)
        return LIM_KV_TEMPLATE.format(records=lim_kv_records(recs), key=recs[g][0])

    budget = 100  # LitM's max_new_tokens: the largest budget this prompt is evaluated with
    if fill:
        n = _fit_count(lambda n: render_chat(tokenizer, user(n, n - 1), chat=use_chat)[0], tokenizer, use_chat,
                       length - budget, n_draw, n_min=2)
    else:
        n = n_pairs
    while True:
        if gold_index is not None:
            g = check_int("gold_index", gold_index, 0, n - 1)
        elif depth is not None:
            g = litm_gold_index(n, depth)
        else:
            g = min(original, n - 1)
        recs = records(n, g)
        key, value = recs[g]
        content = user(n, g)
        text, offset = render_chat(tokenizer, content, chat=use_chat)
        ids = encode_chat(tokenizer, text, use_chat)
        if not fill or len(ids) + budget <= length or n <= 2:  # fill: the asked key may cost more tokens
            break
        n -= 1
    if length is not None and len(ids) + budget > length:
        raise ValueError(f"n_pairs={n} needs {len(ids)} prompt tokens + {budget} new tokens, more than "
                         f"length={length}; give a larger length, fewer pairs or n_pairs='fill'")
    record = f'"{key}": "{value}"'
    a = offset + content.index(record)
    gold_pos = len(encode_chat(tokenizer, text[:a], use_chat))
    return TaskExample("litm_kv", text, value, ids, int(length or len(ids) + budget), g / max(n - 1, 1), g, n,
                       gold_pos, seed, depth,
                       meta={"chat": use_chat, "key": key, "fill": fill,
                             "question_char": offset + content.rindex(LIM_KV_QUESTION)})


def longchat_lines(tokenizer, length: int, *, gold_index: int | None = None, depth: float | None = None,
                   seed: int = 0, chat: bool | None = None) -> TaskExample:
    """LongChat-Lines as CREAM evaluates it, sized so that prompt + 35 new tokens fit ``length``.

    Line ids are distinct adjective-noun pairs (wonderwords lists), values distinct integers in
    [1, 50000]; the asked line sits at ``gold_index``, ``round-down(depth * (n - 1))`` or a drawn index."""
    from creamviz.tasks.ruler_verbatim import _wonderwords

    length, seed = _check_length(length), _check_seed(seed)
    check_tokenizer(tokenizer)
    if gold_index is not None and depth is not None:
        raise ValueError("give gold_index or depth, not both")
    use_chat = _has_chat_template(tokenizer) if chat is None else bool(chat)
    rng = np.random.default_rng(seed)
    adjs, nouns = _wonderwords("adjective"), _wonderwords("noun")
    adjs = [a for a in adjs if a.isalpha() and a.islower()]
    nouns = [w for w in nouns if w.isalpha() and w.islower()]
    n_max = min(LINES_MAX_VALUE, max(2, length // 8))  # a line costs more than 8 tokens
    flat = rng.choice(len(adjs) * len(nouns), size=n_max, replace=False)
    ids_ = [f"{adjs[i // len(nouns)]}-{nouns[i % len(nouns)]}" for i in flat]
    values = [str(int(v) + 1) for v in rng.choice(LINES_MAX_VALUE, size=n_max, replace=False)]
    gold_draw = rng.random()
    budget = 35

    def g_of(n: int) -> int:
        if gold_index is not None:
            return check_int("gold_index", gold_index, 0, n - 1)
        if depth is not None:
            return int(np.floor(check_real("depth", depth, 0.0, 1.0) * (n - 1)))
        return min(n - 1, int(gold_draw * n))

    def user(n: int, g: int) -> str:
        body = "".join(LINES_LINE.format(id=i, value=v) for i, v in zip(ids_[:n], values[:n], strict=True))
        return LINES_HEADER + body + LINES_QUESTION.format(id=ids_[g])

    def render(n: int, g: int) -> str:
        return render_chat(tokenizer, user(n, g), chat=use_chat)[0]

    n = _fit_count(lambda n: render(n, n - 1), tokenizer, use_chat, length - budget, n_max, n_min=2)
    while True:  # the asked id may cost more tokens than the one sized with: drop lines until it fits
        g = g_of(n)
        text = render(n, g)
        ids = encode_chat(tokenizer, text, use_chat)
        if len(ids) + budget <= length or n <= 2:
            break
        n -= 1
    if len(ids) + budget > length:
        raise ValueError(f"length={length} is too short: 2 lines need {len(ids)} tokens + {budget} new tokens")
    line = LINES_LINE.format(id=ids_[g], value=values[g])
    gold_pos = len(encode_chat(tokenizer, text[:text.index(line)], use_chat))
    return TaskExample("longchat_lines", text, values[g], ids, int(length), g / max(n - 1, 1), g, n, gold_pos,
                       seed, depth, meta={"chat": use_chat, "line_id": ids_[g]})


__all__ = ["LINES_HEADER", "LINES_LINE", "LINES_QUESTION", "LITM_DEPTHS", "LITM_GOLD_INDICES", "LITM_PAIRS",
           "litm_gold_index", "litm_kv", "longchat_lines"]
