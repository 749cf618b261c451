"""Training data: the text corpus, seeded N-token windows, and the tiny base's mixture.

- :func:`read_corpus` — the shipped text corpus (``creamviz/resources/corpus/``) or a UTF-8 file;
- :class:`WindowDataset` — seeded windows of N tokens cut from one token stream;
- :class:`Mixture` / :class:`MixtureConfig` — the tiny base's pre-training mixture (natural text plus
  the synthetic retrieval tasks of :mod:`creamviz.tasks`), and :class:`MixtureDataset`, the same rows
  as a fine-tuning dataset, so fine-tuning keeps the skills the base was trained for.

Every item depends only on ``(seed, index)``: not on the process that reads it nor on when.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from creamviz import tasks

__all__ = ["DOC_COLUMNS", "DocumentDataset", "MIN_BUDGET", "MixtureConfig", "Mixture", "MixtureDataset",
           "WindowDataset", "is_dataset_source", "load_documents", "read_corpus", "row_lengths"]

_WINDOW_KEY, _MIX_KEY = 2, 3  # tags keeping the seed streams apart (the collator uses 0 and 1)


@dataclass
class MixtureConfig:
    """The tiny base's data mixture: rows of ``seq_len`` tokens mixing text and retrieval tasks."""

    batch_size: int = 32  # rows per step (8192 tokens)
    seq_len: int = 256  # pre-trained window N, tokens per row
    mix: dict = field(default_factory=lambda: {  # sampling weights of segment kinds
        "text": 0.2, "copy": 0.15, "kv": 0.35, "lines": 0.1, "passkey": 0.1, "niah": 0.1})
    text_weight: float = 0.3  # loss weight of natural-text tokens (task answers / copies weigh 1)
    full_row_prob: float = 0.5  # chance a row is one full-length task segment (else packed)
    kv_extra_queries: int = 8  # up to this many extra "key:value" queries after a kv prompt
    seed: int = 0  # seeds data and init


def read_corpus(path: str | pathlib.Path | None = None) -> str:
    """The training text: ``path`` (a UTF-8 text file) or, for None, the train split of the corpus
    shipped in ``creamviz/resources/corpus/`` (CPython's pydoc topics, PSF licence; the held-out evaluation
    topics are left out), documents joined by newlines."""
    if path is None:
        return "\n".join(tasks.load_corpus("train"))
    p = pathlib.Path(path)
    if not p.is_file():
        raise ValueError(f"data={str(path)!r} is not a text file (or None / 'mix')")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"data={str(path)!r} is not UTF-8 text: byte {err.start} cannot be decoded "
                         f"({err.reason}); pass a UTF-8 text file") from None


class WindowDataset(torch.utils.data.Dataset):
    """``n`` windows of ``length`` tokens cut from one token stream at seeded offsets.

    Item ``i`` is ``{"input_ids": (length,) int64 tensor, "sample_index": i}``; its start offset is
    drawn from ``np.random.default_rng([seed, 2, i])``, so item ``i`` never depends on which
    process reads it or when.
    """

    def __init__(self, tokens: Sequence[int] | np.ndarray, length: int, n: int, seed: int) -> None:
        self.tokens = np.asarray(tokens, dtype=np.int64)
        if length < 1 or self.tokens.shape[0] < length:
            raise ValueError(f"the corpus has {self.tokens.shape[0]} tokens; windows of length={length} "
                             "need at least that many")
        self.length, self.n, self.seed = int(length), int(n), int(seed)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        start = int(np.random.default_rng([self.seed, _WINDOW_KEY, i]).integers(
            0, self.tokens.shape[0] - self.length, endpoint=True))
        return {"input_ids": torch.from_numpy(self.tokens[start:start + self.length].copy()),
                "sample_index": i}


class MixtureDataset(torch.utils.data.Dataset):
    """``n`` rows of ``length`` tokens from the pre-training mixture (:class:`Mixture`)
    (natural text plus the synthetic retrieval tasks, joined by eos), so fine-tuning keeps the
    skills the tiny base was trained for. Row ``i`` comes from its own ``Mixture`` seeded by
    ``(seed, i)``: ``{"input_ids": (length,) int64, "labels": (length,) int64, "sample_index": i}``.
    Pre-training weighs each token's loss (text 0.3, answers 1, random keys 0); the Trainer's loss is
    unweighted, so here tokens of weight 0 get label -100 and every other token counts fully.
    """

    def __init__(self, tokenizer, length: int, n: int, seed: int) -> None:
        if type(tokenizer).__name__ == "ByT5Tokenizer":  # same ids, ~100x faster in bulk
            from creamviz.models import FastByteTokenizer

            tokenizer = FastByteTokenizer()
        self.tokenizer, self.length, self.n, self.seed = tokenizer, int(length), int(n), int(seed)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        row_seed = int(np.random.SeedSequence([self.seed, _MIX_KEY, i]).generate_state(1)[0])
        doc = Mixture(MixtureConfig(seed=row_seed, seq_len=self.length), self.tokenizer).document(self.length)
        ids, weights = doc if isinstance(doc, tuple) else (doc, None)
        ids = torch.tensor(ids, dtype=torch.long)
        row = {"input_ids": ids, "sample_index": i}
        if weights is not None:  # loss weight 0 (unpredictable keys, prompts) -> not a target
            row["labels"] = torch.where(torch.tensor(weights) > 0, ids, torch.full_like(ids, -100))
        return row


MIN_BUDGET = {"kv": 32, "lines": 48, "passkey": 176, "niah": 112, "copy": 16}  # tokens a segment needs
HEX_BYTES = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


class Mixture:
    """Seeded stream of training rows for the tiny model: token ids (exactly ``seq_len`` long) and
    per-token loss weights (the weight of token t scales the loss of predicting it).

    Segment kinds: ``text`` (corpus slice, every token weighted ``text_weight``), ``copy`` (a random
    hex string then ``|`` and the same string again; the copy is weighted 1 - it teaches induction),
    and the retrieval tasks ``kv`` / ``lines`` / ``passkey`` / ``niah`` (only the answer and the
    closing ``</s>`` weighted 1; their random keys are unpredictable and left out of the loss).
    """

    def __init__(self, cfg: MixtureConfig, tokenizer=None):
        self.cfg = cfg
        if tokenizer is None:
            from creamviz.models import FastByteTokenizer

            tokenizer = FastByteTokenizer()
        self.tok = tokenizer
        self.rng = np.random.default_rng(cfg.seed)
        self.text = "\n".join(tasks.load_corpus("train"))
        kinds = list(cfg.mix)
        self.kinds = kinds
        self.p = np.array([cfg.mix[k] for k in kinds], dtype=float)
        self.p /= self.p.sum()

    def _enc(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def _text(self, n_tokens: int) -> tuple[list[int], list[float]]:
        start = int(self.rng.integers(0, len(self.text) - 4 * n_tokens))
        ids = self._enc(self.text[start:start + 4 * n_tokens])[:n_tokens]
        return ids, [self.cfg.text_weight] * len(ids)

    def segment(self, kind: str, budget: int) -> tuple[list[int], list[float]]:
        """One segment of at most ``budget`` tokens and its loss weights."""
        seed = int(self.rng.integers(0, 10_000))  # eval sets use seeds >= 10 000
        if budget < MIN_BUDGET.get(kind, 0):
            kind = "kv" if budget >= MIN_BUDGET["kv"] else "text"
        if kind == "text":
            return self._text(budget)
        if kind == "copy":
            m = int(self.rng.integers(4, (budget - 1) // 2 + 1))
            s = HEX_BYTES[self.rng.integers(0, 16, size=m)].tobytes().decode()
            ids = self._enc(f"{s}|{s}")
            return ids, [0.0] * (m + 1) + [1.0] * (len(ids) - m - 1)
        if kind == "kv":
            n_extra = int(self.rng.integers(0, self.cfg.kv_extra_queries + 1))  # 10 tokens each
            ex = tasks.kv_retrieval(self.tok, max(MIN_BUDGET["kv"], budget - 10 * n_extra), seed=seed)
            ans = self._enc(ex.answer)
            ids, w = ex.prompt_ids + ans, [0.0] * len(ex.prompt_ids) + [1.0] * len(ans)
            pairs = ex.meta["pairs"]
            for _ in range(n_extra):
                k, v = pairs[int(self.rng.integers(len(pairs)))]
                key, val = self._enc(f"\n{k}:"), self._enc(v)
                if len(ids) + len(key) + len(val) > budget:
                    break
                ids += key + val
                w += [0.0] * len(key) + [1.0] * len(val)
            return ids, w
        gen = {"lines": tasks.lines_retrieval, "passkey": tasks.passkey, "niah": tasks.niah}[kind]
        kw = {}
        if kind == "niah":  # a random slice of the train corpus as the haystack
            start = int(self.rng.integers(0, len(self.text) - 8 * budget))
            kw["haystack"] = [self.text[start:start + 8 * budget]]
        ex = gen(self.tok, budget, seed=seed, **kw)
        ans = self._enc(ex.answer)
        return ex.prompt_ids + ans, [0.0] * len(ex.prompt_ids) + [1.0] * len(ans)

    def document(self, length: int) -> tuple[list[int], list[float]]:
        """``length`` tokens: segments each closed by ``</s>``, the rest filled with text."""
        eos = self.tok.eos_token_id
        ids: list[int] = []
        w: list[float] = []
        if self.rng.random() < self.cfg.full_row_prob:
            kind = str(self.rng.choice(self.kinds, p=self.p))
            seg, sw = self.segment(kind, length - 1)
            ids, w = seg + [eos], sw + [1.0 if kind != "text" else self.cfg.text_weight]
        else:
            while length - len(ids) >= 49:
                room = length - len(ids) - 1
                budget = int(self.rng.integers(48, room + 1))
                kind = str(self.rng.choice(self.kinds, p=self.p))
                seg, sw = self.segment(kind, budget)
                ids += seg + [eos]
                w += sw + [1.0 if kind != "text" else self.cfg.text_weight]
        if len(ids) < length:
            more, mw = self._text(length - len(ids))
            ids, w = ids + more, w + mw
        return ids[:length], w[:length]

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, weights), both (batch, N)."""
        rows = [self.document(self.cfg.seq_len) for _ in range(self.cfg.batch_size)]
        ids = torch.tensor([r[0] for r in rows], dtype=torch.long)
        weights = torch.tensor([r[1] for r in rows], dtype=torch.float32)
        return ids, weights


# --------------------------------------------------------------------------- datasets sources
DATASET_SUFFIXES = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}  # file suffix -> datasets builder
DOC_COLUMNS = ("input_ids", "text", "messages")  # columns a source may hold, in the order they are looked for
_DOC_KEY = 4  # seed-stream tag of DocumentDataset's row order


def is_dataset_source(path) -> bool:
    """Is ``path`` read with the ``datasets`` library: a directory (``save_to_disk``) or a
    ``.jsonl`` / ``.json`` / ``.parquet`` file?"""
    if path is None or path == "mix":
        return False
    p = pathlib.Path(path)
    return p.is_dir() or p.suffix.lower() in DATASET_SUFFIXES


def _root_cause(err: BaseException) -> str:
    """The innermost error of a chain (datasets wraps the reader's error), as ``Type: message``."""
    while err.__cause__ is not None or (err.__context__ is not None and not err.__suppress_context__):
        err = err.__cause__ or err.__context__
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]


def _first_bad_json_line(p: pathlib.Path) -> str | None:
    """Where a JSON-lines file stops being UTF-8 JSON objects: ``"line 12: ..."`` or None."""
    import json

    with open(p, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                return f"line {number}: byte {err.start} ({raw[err.start]:#04x}) is not UTF-8"
            try:
                obj = json.loads(line)
            except ValueError as err:
                return f"line {number}: not JSON ({err})"
            if not isinstance(obj, dict):
                return f"line {number}: a JSON {type(obj).__name__}, not an object with named columns"
    return None


def _open_dataset(path):
    import datasets

    p = pathlib.Path(path).expanduser()
    if p.is_dir():
        try:
            ds = datasets.load_from_disk(str(p))
        except FileNotFoundError as err:
            raise ValueError(f"data={str(path)!r} is a directory but not a dataset written by "
                             f"save_to_disk ({err})") from None
        except Exception as err:  # a truncated or damaged .arrow file: pyarrow's OSError / ArrowInvalid
            raise ValueError(f"data={str(path)!r}: the saved dataset cannot be read, a file in it may be "
                             f"truncated or damaged ({_root_cause(err)}); write it again with save_to_disk") from None
        if isinstance(ds, datasets.DatasetDict):
            if "train" not in ds:
                raise ValueError(f"data={str(path)!r} holds splits {sorted(ds)}; a 'train' split is needed")
            ds = ds["train"]
        return ds
    if p.suffix.lower() not in DATASET_SUFFIXES:
        raise ValueError(f"data={str(path)!r}: not a save_to_disk directory nor one of "
                         f"{', '.join(DATASET_SUFFIXES)}")
    if not p.is_file():
        raise ValueError(f"data={str(path)!r} does not exist")
    if p.stat().st_size == 0 or (p.suffix.lower() != ".parquet" and not p.read_bytes()[:1 << 16].strip()):
        raise ValueError(f"data={str(path)!r} is empty (0 rows)")
    # converted once to Arrow in the datasets cache (HF_DATASETS_CACHE), memory-mapped after
    builder = DATASET_SUFFIXES[p.suffix.lower()]
    try:
        return datasets.load_dataset(builder, data_files=str(p), split="train")
    except Exception as err:  # datasets wraps the reader's error in DatasetGenerationError
        where = _first_bad_json_line(p) if builder == "json" and p.suffix.lower() == ".jsonl" else None
        raise ValueError(f"data={str(path)!r} cannot be read as {'JSON lines' if where else builder}"
                         f"{f' at {where}' if where else f' ({_root_cause(err)})'}") from None


def _pick_column(ds, path, column):
    names = ds.column_names
    if column is not None:
        if column not in DOC_COLUMNS:
            raise ValueError(f"data_column={column!r} is not supported; valid: {', '.join(DOC_COLUMNS)}")
        if column not in names:
            raise ValueError(f"data={str(path)!r} has no column {column!r}; its columns: {names}")
        return column
    for name in DOC_COLUMNS:
        if name in names:
            return name
    raise ValueError(f"data={str(path)!r} has none of the columns {', '.join(DOC_COLUMNS)}; "
                     f"its columns: {names} (pass data_column to choose)")


def load_documents(path, tokenizer, *, column: str | None = None, chat_labels: str = "all",
                   num_proc: int | None = None, vocab_size: int | None = None):
    """Token rows of a ``datasets`` source: ``(dataset, column)``; the dataset has ``input_ids``
    (and ``labels`` for chat rows or when the source has them), one row per document.

    ``path``: a ``save_to_disk`` directory (its ``train`` split if it holds several) or a
    ``.jsonl`` / ``.json`` / ``.parquet`` file. ``column`` (None = the first present of
    :data:`DOC_COLUMNS`): ``input_ids`` is used as is (pre-tokenized, e.g. the paper's Pile rows);
    ``text`` is tokenized (no special tokens) and ``messages`` (lists of ``{"role", "content"}``) is
    rendered through the tokenizer's chat template (see :func:`creamviz.chat.render_chat`;
    ``chat_labels`` = "all" or "assistant"). Tokenizing runs through ``Dataset.map`` in batches, so
    the corpus streams through memory once and the result is cached where ``datasets`` caches
    (reused by the next run with the same tokenizer). ValueErrors name the file and the column.
    Pre-tokenized ``input_ids`` must be >= 0 and, when ``vocab_size`` (the model's) is given, below it;
    an ``attention_mask`` column is honoured (see :func:`_apply_attention_mask`).
    """
    ds = _open_dataset(path)
    if len(ds) == 0:
        raise ValueError(f"data={str(path)!r} is empty (0 rows)")
    col = _pick_column(ds, path, column)
    where = f"data={str(path)!r}, column {col!r}"
    _refuse_nulls(ds, [col] + [c for c in ("labels", "attention_mask") if c in ds.column_names and col == "input_ids"],
                  path)
    if "attention_mask" in ds.column_names and col != "input_ids":
        raise ValueError(f"data={str(path)!r} has an 'attention_mask' column, but column {col!r} is tokenized "
                         "here (the mask cannot refer to its tokens); drop the column, or store input_ids with it")
    if col == "input_ids":
        feature = ds.features["input_ids"]
        inner = getattr(feature, "feature", None)
        if inner is None or not str(getattr(inner, "dtype", "")).startswith(("int", "uint")):
            raise ValueError(f"{where} must hold lists of integer token ids, got {feature}")
        keep = ["input_ids"] + [c for c in ("labels", "attention_mask") if c in ds.column_names]
        ds = ds.select_columns(keep)
        if "labels" in keep:
            _refuse_unequal_lengths(ds, "labels", path)
        _refuse_out_of_vocab(ds, path, vocab_size)
        if "attention_mask" in keep:
            ds = _apply_attention_mask(ds, path, num_proc)
        return ds, col
    if col == "text":
        if str(getattr(ds.features["text"], "dtype", "")) not in ("string", "large_string"):
            raise ValueError(f"{where} must hold strings, got {ds.features['text']}")

        def tokenize(batch):
            return {"input_ids": tokenizer(batch["text"], add_special_tokens=False)["input_ids"]}

        out = ds.map(tokenize, batched=True, remove_columns=ds.column_names, num_proc=num_proc,
                     desc=f"tokenizing {pathlib.Path(path).name}")
        return out, col
    from creamviz.chat import CHAT_LABELS, render_chat

    if chat_labels not in CHAT_LABELS:
        raise ValueError(f"chat_labels={chat_labels!r}; valid: {', '.join(CHAT_LABELS)}")

    def render(batch):
        rows = [render_chat(tokenizer, m, labels=chat_labels, where=where) for m in batch["messages"]]
        return {"input_ids": [r[0] for r in rows], "labels": [r[1] for r in rows]}

    out = ds.map(render, batched=True, remove_columns=ds.column_names, num_proc=num_proc,
                 desc=f"rendering {pathlib.Path(path).name} with the chat template")
    return out, col


def _refuse_nulls(ds, columns, path) -> None:
    """ValueError naming the file, the column and the first row whose value is null (JSON ``null``, a
    missing key, a parquet null) or holds bytes that are not UTF-8."""
    import pyarrow.compute as pc

    table = ds.with_format("arrow")[:] if ds._indices is not None else ds.data
    for name in columns:
        column = table.column(name)
        try:  # the JSON reader keeps bytes that are not UTF-8 in string columns
            column.validate(full=True)
        except Exception as err:
            raise ValueError(f"data={str(path)!r}, column {name!r} holds text that is not valid UTF-8 "
                             f"({str(err).split(': ')[-1]}; the index counts rows); write the file as UTF-8") from None
        if column.null_count:
            first = int(pc.index(pc.is_null(column), True).as_py())
            raise ValueError(f"data={str(path)!r}, column {name!r}: row {first} is null ({column.null_count} "
                             f"null row(s) in all); every row needs a value")


def _refuse_out_of_vocab(ds, path, vocab_size) -> None:
    """ValueError naming the first row holding a token id < 0 or >= ``vocab_size`` (None: only < 0)."""
    import pyarrow.compute as pc

    table = ds.with_format("arrow")[:] if ds._indices is not None else ds.data
    column = table.column("input_ids").combine_chunks()
    flat = pc.list_flatten(column)
    if len(flat) == 0:
        return
    bad = pc.less(flat, 0)
    if vocab_size is not None:
        bad = pc.or_(bad, pc.greater_equal(flat, int(vocab_size)))
    if pc.any(bad).as_py():
        first = int(pc.index(bad, True).as_py())
        row = int(pc.list_parent_indices(column)[first].as_py())
        valid = f"[0, {int(vocab_size)})" if vocab_size is not None else ">= 0"
        raise ValueError(f"data={str(path)!r}, column 'input_ids': row {row} holds token id {flat[first].as_py()}; "
                         f"valid ids are {valid} (the model's vocabulary)")


def _refuse_unequal_lengths(ds, column, path) -> None:
    """ValueError naming the first row whose ``column`` list is not as long as its ``input_ids``."""
    import pyarrow.compute as pc

    table = ds.with_format("arrow")[:] if ds._indices is not None else ds.data
    ids_len = pc.list_value_length(table.column("input_ids")).to_numpy(zero_copy_only=False)
    col_len = pc.list_value_length(table.column(column)).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(ids_len != col_len)
    if bad.size:
        row = int(bad[0])
        raise ValueError(f"data={str(path)!r}, column {column!r}: row {row} has {int(col_len[row])} values for "
                         f"{int(ids_len[row])} input_ids ({bad.size} such row(s)); each row needs one per token")


def _apply_attention_mask(ds, path, num_proc):
    """Honour a pre-tokenized source's ``attention_mask``: each row keeps only its masked-in tokens
    (1s), which must form one contiguous run (left or right padding); ``labels`` are cut alike. A row
    whose mask has another length, values other than 0 / 1, holes, or no 1 at all is refused,
    naming the file, the column and the row."""
    where = f"data={str(path)!r}, column 'attention_mask'"
    has_labels = "labels" in ds.column_names

    def strip(batch, indices):
        out = {"input_ids": [], **({"labels": []} if has_labels else {})}
        for j, (ids, mask) in enumerate(zip(batch["input_ids"], batch["attention_mask"], strict=True)):
            m = np.asarray(mask)
            row = indices[j]
            if m.shape != (len(ids),):
                raise ValueError(f"{where}: row {row} has {m.size} mask values for {len(ids)} input_ids")
            if m.size and not np.isin(m, (0, 1)).all():
                raise ValueError(f"{where}: row {row} holds values other than 0 and 1")
            on = np.flatnonzero(m)
            if on.size == 0:
                raise ValueError(f"{where}: row {row} is all zeros (no token to train on)")
            if on[-1] - on[0] + 1 != on.size:
                raise ValueError(f"{where}: row {row} has padding (0s) between tokens; only left or right "
                                 "padding can be removed")
            out["input_ids"].append(ids[on[0]:on[-1] + 1])
            if has_labels:
                out["labels"].append(batch["labels"][j][on[0]:on[-1] + 1])
        return out

    return ds.map(strip, batched=True, with_indices=True, remove_columns=ds.column_names, num_proc=num_proc,
                  desc=f"removing padding of {pathlib.Path(path).name}")


def row_lengths(ds) -> np.ndarray:
    """Token count of every row of a dataset with an ``input_ids`` list column, ``(rows,)`` int64,
    read from the Arrow column without materialising the rows."""
    import pyarrow.compute as pc

    col = ds.with_format("arrow")[:]["input_ids"] if ds._indices is not None else \
        ds.data.column("input_ids")
    return np.asarray(pc.list_value_length(col).to_numpy(zero_copy_only=False), dtype=np.int64)


class DocumentDataset(torch.utils.data.Dataset):
    """``n`` examples from the rows of a tokenized dataset (:func:`load_documents`).

    Each example is one row cut to its first ``length`` tokens (N = train_len for contiguous
    tokens, as the paper's pre-chunked rows; L = target_len for aligned tokens, whose head must be
    the document's start). Rows are visited in a seeded order, reshuffled every pass (pass ``e`` is
    ``default_rng([seed, 4, e]).permutation``), so example ``i`` depends only on ``(seed, i)``.
    Rows shorter than ``length``: ``short="error"`` raises a ValueError naming ``source``, ``column``,
    how many and the first one; ``"skip"`` leaves them out; ``"keep"`` feeds them whole (the
    collator pads; contiguous tokens only).
    Items: ``{"input_ids": (T,) int64, "sample_index": i}`` plus ``labels`` when the rows have them.
    """

    def __init__(self, docs, length: int, n: int, seed: int, *, source: str = "data",
                 column: str = "input_ids", short: str = "error", need: str = "") -> None:
        if short not in ("error", "skip", "keep"):
            raise ValueError(f"short_docs={short!r}; valid: error, skip, keep")
        lengths = row_lengths(docs)
        too_short = np.flatnonzero(lengths < length)
        where = f"data={str(source)!r}, column {column!r}"
        if too_short.size and short == "error":
            first = int(too_short[0])
            raise ValueError(
                f"{where}: {too_short.size} of {lengths.size} documents are shorter than {length} tokens "
                f"(first: row {first}, {int(lengths[first])} tokens){need}. Use longer documents, or "
                "short_docs='skip' to leave them out (or 'keep' to pad them, contiguous tokens only)")
        rows = np.flatnonzero(lengths >= length) if short == "skip" else np.flatnonzero(lengths > 0)
        if rows.size == 0:
            raise ValueError(f"{where}: no document has {length} tokens{need}; longest is "
                             f"{int(lengths.max())} tokens")
        self.docs, self.rows = docs, rows
        self.length, self.n, self.seed = int(length), int(n), int(seed)
        self.has_labels = "labels" in docs.column_names
        self._perm: tuple[int, np.ndarray] | None = None  # (pass, permutation) of the last pass read

    def __len__(self) -> int:
        return self.n

    def row_of(self, i: int) -> int:
        """The dataset row example ``i`` comes from."""
        epoch, j = divmod(int(i), self.rows.size)
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, _DOC_KEY, epoch]).permutation(self.rows.size))
        return int(self.rows[self._perm[1][j]])

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        row = self.docs[self.row_of(i)]
        item = {"input_ids": torch.tensor(row["input_ids"][:self.length], dtype=torch.long),
                "sample_index": int(i)}
        if self.has_labels:
            item["labels"] = torch.tensor(row["labels"][:self.length], dtype=torch.long)
        return item
