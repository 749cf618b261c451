"""CREAM-Chat data: chat-format examples rendered through the tokenizer's chat template.

The paper's instruction-tuned variant (CREAM-Chat) fine-tunes a chat model on ShareGPT
conversations cut to N tokens with the same CREAM position ids, labels on every token (the
official script masks nothing). Here:

- :func:`render_chat` turns one conversation (a list of ``{"role", "content"}`` messages) into
  ``(input_ids, labels)`` through ``tokenizer.apply_chat_template``; ``labels="all"`` (official) or
  ``"assistant"`` (loss only on the assistant turns' content and end-of-turn tokens; the user
  turns, the system prompt, a default system prompt the template injects and the ``assistant``
  header get -100). The ids are always the whole conversation's tokenization.
- :func:`longchat_lines_chats` generates a small seeded LongChat-Lines-style set: a long
  multi-turn conversation in which the user dictates numbered lines ``line <id>: REGISTER_CONTENT
  is <number>`` over several turns and finally asks for the number on one line.
  ``creamviz/resources/chat/longchat_lines.jsonl`` is that set as shipped (:data:`SHIPPED_CHATS`).

A ``.jsonl`` / ``.json`` / ``.parquet`` file or a ``save_to_disk`` dataset with a ``messages``
column trains through ``creamviz train --data <file> --data-column messages``.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

import numpy as np

from creamviz.resources import resource_path

__all__ = ["CHAT_LABELS", "SHIPPED_CHATS", "longchat_lines_chats", "render_chat", "write_chats"]

CHAT_LABELS = ("all", "assistant")  # label modes: every token (official CREAM-Chat) or assistant turns
SHIPPED_CHATS = resource_path("chat", "longchat_lines.jsonl")
SHIPPED_RECIPE = dict(n=24, n_lines=120, lines_per_turn=12, seed=0)  # how SHIPPED_CHATS was generated
_ROLES = ("system", "user", "assistant")

# line ids are word pairs, as in LongChat-Lines ("line righteous-ethernet: ...")
_ADJECTIVES = ("amber", "brisk", "calm", "dusty", "eager", "fuzzy", "gentle", "hollow", "icy", "jolly",
               "keen", "lucky", "mellow", "noble", "odd", "plain", "quiet", "rapid", "silent", "tidy",
               "urban", "vivid", "witty", "young", "zesty", "bold", "crisp", "deep", "early", "faint")
_NOUNS = ("anchor", "banjo", "cactus", "dolphin", "ember", "falcon", "glacier", "harbor", "island",
          "jungle", "kettle", "lantern", "meadow", "nebula", "orchard", "pepper", "quartz", "river",
          "saddle", "tunnel", "violin", "walnut", "yonder", "zephyr", "beacon", "canyon", "delta",
          "ethernet", "forest", "garnet")


def _check_messages(messages, where: str) -> list[dict]:
    if isinstance(messages, str) or not isinstance(messages, Sequence) or len(messages) == 0:
        raise ValueError(f"{where}: a chat example must be a non-empty list of messages, got "
                         f"{type(messages).__name__}")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or m.get("role") not in _ROLES:
            raise ValueError(f"{where}: message {i} must be {{'role': one of {_ROLES}, 'content': str}}, "
                             f"got {m!r}"[:300])
        out.append({"role": m["role"], "content": m["content"]})
    return out


_SENTINEL = "\u2063creamviz-answer\u2063"  # stands in for an assistant answer to find where it starts


def render_chat(tokenizer, messages, *, labels: str = "all", where: str = "chat") -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` of one conversation rendered with ``tokenizer``'s chat template.

    The ids are the tokenization of the whole rendered conversation, once (no special tokens added),
    so they equal what the model sees at inference whatever the turns contain. ``labels="all"``:
    labels = ids. ``"assistant"``: -100 except the assistant turns' answers: the characters from the
    start of each assistant message's content to the end of its turn (its closing tokens included),
    found as character spans and mapped onto tokens by the tokenizer's offsets (a token is labelled
    when it starts inside a span; one that merges header and content characters is not). Whatever
    the template injects (a default system prompt, role headers) is never labelled. The content's
    start is found by rendering the turn with a placeholder answer, so templates that insert text
    before the first message are handled (a slow tokenizer, without offsets, tokenizes the text
    between span edges and must give the whole conversation's ids). ValueError when the tokenizer
    has no chat template, or the template does not render
    the conversation's prefixes as prefixes (``where`` names the source in messages).
    """
    if labels not in CHAT_LABELS:
        raise ValueError(f"labels={labels!r}; valid: {', '.join(CHAT_LABELS)}")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{where}: the tokenizer ({type(tokenizer).__name__}) has no chat template; "
                         "chat rows need a chat model's tokenizer")
    messages = _check_messages(messages, where)

    def render(msgs) -> str:
        return tokenizer.apply_chat_template(msgs, tokenize=False)

    full = render(messages)
    if labels == "all":
        ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        return ids, list(ids)
    spans = []  # [start, end) character spans of the assistant answers in `full`
    for j, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        upto = render(messages[:j + 1])
        marked = render(messages[:j] + [{"role": "assistant", "content": _SENTINEL}])
        begin = marked.find(_SENTINEL)
        if begin < 0 or not full.startswith(upto) or upto[:begin] != marked[:begin] \
                or not upto[begin:].startswith(m["content"]):
            raise ValueError(f"{where}: the chat template does not render message {j} as an extension of the "
                             "messages before it (or changes its content); cannot find the assistant answer")
        spans.append((begin, len(upto)))
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        starts = np.array([o[0] for o in enc["offset_mapping"]], dtype=np.int64)  # (T,) first character of each token
        answer = np.zeros(len(ids), dtype=bool)
        for begin, stop in spans:
            answer |= (starts >= begin) & (starts < stop)
        return ids, [t if a else -100 for t, a in zip(ids, answer, strict=True)]
    # no offsets (a slow tokenizer): tokenize the pieces between span edges, accepted only when they
    # add up to the whole conversation's tokenization (always true for a byte tokenizer)
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    edges = sorted({0, len(full), *(e for span in spans for e in span)})
    pieces, lab = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        tok = tokenizer(full[lo:hi], add_special_tokens=False)["input_ids"]
        pieces += tok
        lab += tok if any(b <= lo < e for b, e in spans) else [-100] * len(tok)
    if pieces != list(ids):
        raise ValueError(f"{where}: labels='assistant' needs a fast tokenizer (character offsets) here: "
                         f"{type(tokenizer).__name__} tokenizes the turns differently from the whole conversation")
    return list(ids), lab


def longchat_lines_chats(n: int, *, n_lines: int = 120, lines_per_turn: int = 12, seed: int = 0) -> list[dict]:
    """``n`` seeded LongChat-Lines-style conversations.

    Each: the user dictates ``n_lines`` lines ``line <adjective>-<noun>: REGISTER_CONTENT is <number>``
    (``lines_per_turn`` per user turn, distinct ids, 5-digit numbers), the assistant acknowledges
    each batch, then the user asks ``Tell me what is the REGISTER_CONTENT in line <id>? I need the
    number.`` and the assistant answers with it. Returns dicts ``{"messages", "line", "answer"}``;
    conversation ``i`` depends only on ``(seed, i)``.
    """
    for name, v, low in (("n", n, 1), ("n_lines", n_lines, 1), ("lines_per_turn", lines_per_turn, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name}={v!r} is out of range: valid is an integer >= {low}")
    n_ids = len(_ADJECTIVES) * len(_NOUNS)
    if n_lines > n_ids:
        raise ValueError(f"n_lines={n_lines} is out of range: valid is 1..{n_ids} (distinct line ids)")
    chats = []
    for i in range(n):
        rng = np.random.default_rng([seed, 5, i])
        picks = rng.choice(n_ids, size=n_lines, replace=False)
        ids = [f"{_ADJECTIVES[p // len(_NOUNS)]}-{_NOUNS[p % len(_NOUNS)]}" for p in picks]
        numbers = [int(x) for x in rng.integers(10_000, 100_000, size=n_lines)]
        messages = [{"role": "system", "content": "You are a careful assistant with a perfect memory."}]
        for start in range(0, n_lines, lines_per_turn):
            stop = min(start + lines_per_turn, n_lines)
            lines = "\n".join(f"line {ids[t]}: REGISTER_CONTENT is <{numbers[t]}>" for t in range(start, stop))
            messages.append({"role": "user", "content": f"Record lines {start + 1} to {stop}:\n{lines}"})
            messages.append({"role": "assistant", "content": f"Recorded lines {start + 1} to {stop}."})
        ask = int(rng.integers(n_lines))
        messages.append({"role": "user", "content": f"Tell me what is the REGISTER_CONTENT in line "
                                                    f"{ids[ask]}? I need the number."})
        messages.append({"role": "assistant", "content": f"The REGISTER_CONTENT in line {ids[ask]} is "
                                                         f"<{numbers[ask]}>."})
        chats.append({"messages": messages, "line": ids[ask], "answer": numbers[ask]})
    return chats


def write_chats(chats: Sequence[dict], path) -> pathlib.Path:
    """Write conversations as jsonl (one ``{"messages", ...}`` object per line); returns the path."""
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(c, ensure_ascii=False) + "\n" for c in chats)
    return p


if __name__ == "__main__":  # regenerate the shipped set
    print(write_chats(longchat_lines_chats(**SHIPPED_RECIPE), SHIPPED_CHATS))
