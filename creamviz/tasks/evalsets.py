"""Task registry, depth sweeps and the fixed evaluation sets shipped with the package."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

from creamviz.tasks.byte import kv_retrieval, lines_retrieval, niah, niah_grid, passkey
from creamviz.tasks.common import (
    EVAL_DIR,
    TaskExample,
    _check_positive,
    check_example_count,
    encode,
)
from creamviz.tasks.real import (
    CHAT_TASKS,
    encode_chat,
    kv_uuid,
    niah_chat,
    passkey_chat,
)
from creamviz.tasks.ruler import RULER_GENERATORS

REAL_EVAL_DIR = EVAL_DIR / "real"  # fixed sets for the real model's tokenizer (SmolLM2)
REAL_EVAL_LENGTHS = (2048, 4096)  # inside SmolLM2's window N = 8192
REAL_EVAL_SEED = 30_000  # first seed of the real-model fixed sets

GENERATORS = {"kv": kv_retrieval, "lines": lines_retrieval, "passkey": passkey, "niah": niah,
              "kv_uuid": kv_uuid, "passkey_chat": passkey_chat, "niah_chat": niah_chat}


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
