"""Short fine-tuning runs with sampled position ids, on ``transformers.Trainer`` (so Accelerate).

CREAM, PoSE and friends all feed a window of N tokens (the pre-trained length) and change only the
position ids, a strictly increasing vector inside ``[0, L)`` for the target length L. Here:

- :class:`PositionCollator` is a data collator for any ``transformers.Trainer``: it pads a batch,
  builds ``labels`` and an explicit ``attention_mask`` and draws ``position_ids`` per row from a
  :mod:`creamviz.samplers` sampler. ``tokens="contiguous"`` keeps the row's tokens as they are
  (pre-chunked N-token texts, the official setup); ``tokens="aligned"`` takes the tokens *at the
  sampled offsets* of a long document (head ``[0, L_h)``, middle ``[P_s, P_e]``, the document's last
  ``L_t`` tokens), so position id and text offset agree.
- :class:`TrainConfig` / :func:`train` run a short fine-tuning of ``"tiny"`` (the shipped base) or
  any local HF causal LM with RoPE interpolation (linear / YaRN, ``factor = L / W`` for the model's
  window W; the sampler's factor is ``L / N``, :class:`Lengths` says which is which), safetensors
  checkpoints every K steps, exact resume, and a ``creamviz_run.json`` beside the final model.

Reproducibility: every row's position ids come from their own ``np.random.Generator`` seeded by
``(seed, key)``. The key is the example's ``sample_index`` when the dataset supplies one (then the
ids depend on nothing else: not on batch order, process count, prefetching or resumes), else the
collator's batch counter and the row number (then restore the counter with ``load_state_dict``).
"""

from __future__ import annotations

import json
import logging
import math
import pathlib
import subprocess
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from transformers import PrinterCallback, TrainerCallback

from creamviz.data import DOC_COLUMNS, MixtureDataset, WindowDataset, read_corpus
from creamviz.lengths import ROPE_CHOICES, Lengths
from creamviz.models import MAX_POSITION
from creamviz.samplers import check_position_ids
from creamviz.validation import ParameterError, check_fields, check_real, option

__all__ = [
    "PositionCollator",
    "TOKEN_MODES",
    "TrainConfig",
    "TrainResult",
    "StopCallback",
    "train",
    "ROPE_CHOICES",
    "RUN_METADATA",
    "Lengths",
    "training_dataset",
    "distributed_info",
    "NonFiniteLossError",
    "complete_checkpoints",
]

TOKEN_MODES = ("contiguous", "aligned")
RUN_METADATA = "creamviz_run.json"  # written beside the final model
CONFIG_FILE = "creamviz_train_config.json"  # written in the out dir at the start (checked on resume)
_COUNTER_KEY, _INDEX_KEY = 0, 1  # tags keeping the seed streams apart (creamviz.data uses 2, 3)


# --------------------------------------------------------------------------- the collator
def _as_array(values: Any, name: str) -> np.ndarray:
    """A 1-D int64 array from a list, numpy array or torch tensor."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D sequence of integers, got shape {arr.shape} dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def process_rank() -> int:
    """This process's rank in the torch.distributed group it belongs to, or 0 outside one."""
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class PositionCollator:
    """Pad a batch and draw its position ids from a sampler; usable as ``Trainer(data_collator=...)``.

    Parameters
    ----------
    sampler : a :mod:`creamviz.samplers` sampler (train_len N, target_len L).
    tokenizer : optional; only its ``pad_token_id`` is used (default pad id 0).
    tokens : ``"contiguous"`` — each example is a text of at most N tokens; row ``i`` keeps its
        T_i tokens and gets the first T_i of its N sampled ids (full windows T = N get them all).
        ``"aligned"`` — each example is a long document of D tokens (cut to its first L tokens);
        the row is the N tokens at the sampled offsets: ``doc[0:L_h]``, ``doc[P_s:P_e+1]`` and the
        document's last ``L_t`` tokens (RandPos: ``doc[p]`` for every sampled id p). With D >= L the
        token at position id p is exactly ``doc[p]``. Needs ``D >= P_e + 1 + L_t``
        (RandPos: ``D > max id``), else ValueError.
    seed : int >= 0, or None to draw one (kept in ``self.seed`` so the run can be repeated).
    record : keep one dict per row in ``self.log`` (segments, or the ids for RandPos).
    rank : process index mixed into counter-based keys (default: torch.distributed's rank, or 0).

    Examples are dicts with ``input_ids`` (list / array / tensor), optionally ``labels`` (same
    length, -100 = ignore), ``attention_mask`` (0 = treat as padding) and ``sample_index`` (int;
    makes the row's ids a function of ``(seed, sample_index)`` alone). Returns int64 tensors
    ``input_ids``, ``labels`` (padding -> -100), ``attention_mask`` (1 = token, 0 = padding) and
    ``position_ids`` (padding -> 0), each ``(batch, T)``; padding is on the right.
    """

    def __init__(self, sampler, tokenizer=None, *, tokens: str = "contiguous", seed: int | None = None,
                 record: bool = False, rank: int | None = None) -> None:
        if not hasattr(sampler, "position_ids") or not hasattr(sampler, "train_len"):
            raise ValueError(f"sampler must be a creamviz.samplers sampler, got {type(sampler).__name__}")
        if tokens not in TOKEN_MODES:
            raise ValueError(f"tokens={tokens!r} is not a token mode; valid: {', '.join(TOKEN_MODES)}")
        if seed is None:
            seed = int(np.random.default_rng().integers(2**62))  # fresh entropy, recorded
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0 or None, got {seed!r}")
        self.sampler = sampler
        self.tokens = tokens
        self.seed = int(seed)
        pad = getattr(tokenizer, "pad_token_id", None) if tokenizer is not None else None
        self.pad_token_id = 0 if pad is None else int(pad)
        self.record = bool(record)
        self.log: list[dict] = []
        self.rank = rank
        self.batches_done = 0  # batches collated so far (the counter of counter-based keys)

    # ---- state (only needed when examples carry no sample_index) -------------------------------
    def state_dict(self) -> dict:
        return {"seed": self.seed, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.batches_done = int(state["batches_done"])

    def _rank(self) -> int:
        return int(self.rank) if self.rank is not None else process_rank()

    def row_seed(self, *, sample_index: int | None = None, batch: int | None = None,
                 row: int | None = None) -> list[int]:
        """The entropy seeding one row's Generator: ``[seed, 1, sample_index]`` for indexed examples,
        ``[seed, 0, rank, batch, row]`` otherwise."""
        if sample_index is not None:
            return [self.seed, _INDEX_KEY, int(sample_index)]
        return [self.seed, _COUNTER_KEY, self._rank(), int(batch), int(row)]

    def sample_rows(self, seeds: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray, list[dict]]:
        """Draw one layout per seed: ids ``(n, N)`` int64, tail lengths ``L_t`` ``(n,)`` and records."""
        n, big_n = len(seeds), self.sampler.train_len
        ids = np.empty((n, big_n), dtype=np.int64)
        tail_len = np.zeros(n, dtype=np.int64)
        records = []
        for i, entropy in enumerate(seeds):
            rng = np.random.default_rng(entropy)
            if getattr(self.sampler, "has_segments", True):
                seg = self.sampler.sample(1, rng)
                ids[i] = check_position_ids(seg.position_ids(), 1, big_n, self.sampler.target_len,
                                            sampler=getattr(self.sampler, "name", type(self.sampler).__name__))[0]
                tail_len[i] = seg.tail_len[0]
                rec = {"head_len": int(seg.head_len[0]), "mid_start": int(seg.mid_start[0]),
                       "mid_end": int(seg.mid_end[0]), "tail_len": int(seg.tail_len[0]),
                       "branch": int(seg.branch[0])}
                if seg.rand_factor is not None:
                    rec["rand_factor"] = int(seg.rand_factor[0])
            else:  # RandPos: no segments, the ids are the record
                ids[i] = check_position_ids(self.sampler.position_ids(1, rng), 1, big_n, self.sampler.target_len,
                                            sampler=getattr(self.sampler, "name", type(self.sampler).__name__))[0]
                rec = {"position_ids": ids[i].tolist()}
            records.append(rec)
        return ids, tail_len, records

    # ---- the collation ----------------------------------------------------------------------
    def __call__(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        if len(examples) == 0:
            raise ValueError("examples is empty; a batch needs at least one example")
        batch = self.batches_done
        seeds, indices = [], []
        for row, ex in enumerate(examples):
            idx = ex.get("sample_index")
            idx = None if idx is None else int(idx)
            indices.append(idx)
            seeds.append(self.row_seed(sample_index=idx, batch=batch, row=row))
        ids, tail_len, records = self.sample_rows(seeds)
        if self.tokens == "contiguous":
            rows = [self._contiguous_row(ex, ids[i]) for i, ex in enumerate(examples)]
        else:
            rows = [self._aligned_row(ex, ids[i], int(tail_len[i])) for i, ex in enumerate(examples)]
        out = self._pad(rows)
        if self.record:
            for row, (rec, idx) in enumerate(zip(records, indices, strict=True)):
                self.log.append({"batch": batch, "row": row, "sample_index": idx,
                                 "length": int(out["attention_mask"][row].sum()), **rec})
        self.batches_done += 1
        return out

    @staticmethod
    def _example_arrays(ex: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if "input_ids" not in ex:
            raise ValueError(f"each example needs 'input_ids'; got keys {sorted(ex)}")
        tok = _as_array(ex["input_ids"], "input_ids")
        if tok.shape[0] == 0:
            raise ValueError("an example has 0 input_ids; every example needs at least one token")
        lab = tok.copy() if ex.get("labels") is None else _as_array(ex["labels"], "labels")
        keep = np.ones(tok.shape, bool) if ex.get("attention_mask") is None else \
            _as_array(ex["attention_mask"], "attention_mask").astype(bool)
        if lab.shape != tok.shape or keep.shape != tok.shape:
            raise ValueError(f"labels / attention_mask must match input_ids' length {tok.shape[0]}, "
                             f"got {lab.shape[0]} / {keep.shape[0]}")
        if not keep.any():
            raise ValueError("an example's attention_mask is all zeros: it has no token to train on")
        return tok, lab, keep

    def _contiguous_row(self, ex: dict, pos: np.ndarray):
        tok, lab, keep = self._example_arrays(ex)
        big_n = self.sampler.train_len
        if tok.shape[0] > big_n:
            raise ValueError(f"tokens='contiguous' needs examples of at most train_len={big_n} tokens, "
                             f"got {tok.shape[0]}; chunk the text or use tokens='aligned'")
        return tok, lab, keep, pos[:tok.shape[0]]

    def _aligned_row(self, ex: dict, pos: np.ndarray, tail_len: int):
        tok, lab, keep = self._example_arrays(ex)
        big_n, big_l = self.sampler.train_len, self.sampler.target_len
        doc_len = min(tok.shape[0], big_l)  # D, cut to L so that offsets equal ids when D >= L
        head_mid = big_n - tail_len  # L_h + L_m tokens before the tail
        needed = int(pos[head_mid - 1]) + 1 + tail_len if head_mid > 0 else tail_len
        if doc_len < needed:
            raise ValueError(
                f"tokens='aligned' needs a document of at least {needed} tokens for this sample "
                f"(last head/middle id {int(pos[head_mid - 1]) if head_mid else None}, L_t={tail_len}); "
                f"got {tok.shape[0]}. Feed documents of target_len={big_l} tokens")
        offsets = pos.copy()
        offsets[head_mid:] -= big_l - doc_len  # the document's last L_t tokens
        return tok[offsets], lab[offsets], keep[offsets], pos

    def _pad(self, rows) -> dict[str, torch.Tensor]:
        def pad(arrays, value):  # right padding to the longest row: (batch, T)
            return pad_sequence([torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)) for a in arrays],
                                batch_first=True, padding_value=value)

        return {"input_ids": pad([r[0] for r in rows], self.pad_token_id),
                "labels": pad([np.where(r[2], r[1], -100) for r in rows], -100),
                "attention_mask": pad([r[2] for r in rows], 0),
                "position_ids": pad([r[3] for r in rows], 0)}


# --------------------------------------------------------------------------- config and result
def _sampler_names():
    from creamviz.samplers import SAMPLERS

    return tuple(SAMPLERS)


def _scheduler_names():
    from transformers import SchedulerType

    return tuple(t.value for t in SchedulerType)


def _optimizer_names():
    from transformers.training_args import OptimizerNames

    return tuple(o.value for o in OptimizerNames)


SHORT_DOC_MODES = ("error", "skip", "keep")  # what to do with dataset rows shorter than the window
CHAT_LABEL_MODES = ("all", "assistant")  # chat rows: loss on every token (official) or assistant turns


@dataclass
class TrainConfig:
    """One fine-tuning run. N = ``train_len`` tokens per window, ids inside ``[0, L)``, L = ``target_len``.

    Every field declares its valid values (:func:`creamviz.validation.option`); :meth:`validate`
    checks them and ``creamviz train --help`` prints them, from the same declaration."""

    model: str = option("tiny", "'tiny' (shipped base, N = 256), a fetched model name or a local HF "
                        "causal-LM directory (safetensors)")
    sampler: str = option("cream", "position sampler (any register_sampler'ed scheme)", choices=_sampler_names)
    sampler_params: dict = option(help="extra sampler args, e.g. {'k': 32, 'middle': 'uniform'}",
                                  default_factory=dict, cli=False)
    tokens: str = option("contiguous", "'contiguous' N-token windows, or 'aligned' tokens at the sampled "
                         "offsets", choices=TOKEN_MODES)
    rope: str = option("yarn", "RoPE interpolation from the model's window W to L", choices=ROPE_CHOICES)
    factor: float | None = option(None, "RoPE scaling factor; none -> L / W (the model's pre-trained window)",
                                  low=1.0)
    train_len: int | None = option(None, "N, tokens per window; none -> the model's pre-trained window W",
                                   low=1, high=MAX_POSITION - 1)
    target_len: int = option(2048, "L, the context length to extend to", low=2, high=MAX_POSITION,
                             hint=" (float32 RoPE angles are exact below 2**24 positions)")
    steps: int = option(200, "optimizer steps", low=1)
    lr: float = option(3e-4, "peak learning rate (official CREAM on 7B: 2e-5; the tiny model wants more)",
                       low=0.0, low_open=True)
    lr_schedule: str = option("constant_with_warmup", "transformers scheduler name", choices=_scheduler_names)
    warmup_steps: int = option(10, "linear warm-up steps", low=0)
    weight_decay: float = option(0.0, "AdamW weight decay", low=0.0)
    max_grad_norm: float = option(1.0, "gradient clipping (0 turns it off)", low=0.0)
    batch_size: int = option(8, "windows per device per micro-batch", low=1)
    grad_accum: int = option(1, "micro-batches per optimizer step", low=1)
    seed: int = option(0, "seeds windows, position ids, data order and torch", low=0, high=2**32 - 1,
                       hint=" (numpy's legacy seeding in transformers.set_seed takes 32 bits)")
    save_every: int = option(50, "checkpoint (safetensors) every K steps", low=1)
    keep_checkpoints: int | None = option(2, "newest checkpoints kept; none keeps all", low=1)
    out: str = option("runs/train", "output directory")
    resume: bool = option(False, "continue from the last checkpoint in out")
    data: str | None = option(None, "'mix' (corpus text + synthetic retrieval tasks), a UTF-8 .txt file, a "
                              "datasets save_to_disk directory or a .jsonl/.json/.parquet file (input_ids, text "
                              "or messages column), or none (the shipped corpus, train split)")
    data_column: str | None = option(None, "dataset column; none -> the one present", choices=DOC_COLUMNS)
    short_docs: str = option("error", "dataset rows shorter than the window (N; aligned: L)",
                             choices=SHORT_DOC_MODES)
    chat_labels: str = option("all", "chat rows: loss on all tokens (official CREAM-Chat) or assistant "
                              "turns only", choices=CHAT_LABEL_MODES)
    attn: str = option("sdpa", "attention implementation", choices=("sdpa", "eager"))
    bf16: bool = option(False, "bf16 mixed precision (GPUs that support it)")
    gradient_checkpointing: bool = option(False, "recompute activations in backward (the model's own); "
                                          "saves memory")
    optim: str | None = option(None, "TrainingArguments optimizer, e.g. adamw_torch_fused; none -> "
                               "adamw_torch", choices=_optimizer_names)
    cpu: bool | None = option(None, "force CPU; none -> CPU when CUDA is absent")
    progress: bool = option(True, "tqdm progress bar")
    record_positions: bool = option(True, "write the sampled layouts to positions*.jsonl")
    lora_r: int | None = option(None, "LoRA rank r (creamviz.lora, through peft); none -> full fine-tuning",
                                low=1)
    lora_alpha: float | None = option(None, "LoRA scale alpha (update x alpha / r); none -> 2 r", low=0.0,
                                      low_open=True)
    lora_targets: str = option("q_proj,k_proj,v_proj,o_proj", "comma-separated module names that get an adapter")
    lora_dropout: float = option(0.0, "dropout on the adapters' input", low=0.0)
    lora_embed_norms: bool = option(False, "LongLoRA's LoRA+: also train the embeddings and norms in full")

    def validate(self, *, data_is_label: bool = False) -> None:
        """Check every field against its declaration, then the rules tying fields to the disk or to
        each other; a ValueError (:class:`~creamviz.validation.ParameterError`) names the field.
        ``data_is_label``: the rows come from a dataset passed to :func:`train`, ``data`` only names them."""
        check_fields(self)
        out = pathlib.Path(self.out)
        if out.exists() and not out.is_dir():
            raise ParameterError("out", f"out={self.out!r} is an existing file; valid: a directory (new or existing)")
        if not data_is_label and self.data not in (None, "mix") and not pathlib.Path(self.data).exists():
            raise ParameterError("data", f"data={self.data!r} does not exist; valid: none (corpus), 'mix', a UTF-8 "
                                 "text file or a dataset (save_to_disk directory, jsonl / json / parquet file)")
        if self.train_len is not None and self.target_len <= self.train_len:
            raise ParameterError("target_len", f"target_len={self.target_len} is out of range: valid is > "
                                 f"train_len={self.train_len}")
        if self.short_docs == "keep" and self.tokens == "aligned":
            raise ParameterError("short_docs", "short_docs='keep' needs tokens='contiguous' (aligned rows need "
                                 "documents of L tokens)")
        if self.lora_r is not None:
            check_real("lora_dropout", self.lora_dropout, 0.0, 1.0, high_open=True)
            if not isinstance(self.lora_targets, str) or not self.lora_targets.replace(",", "").strip():
                raise ParameterError("lora_targets", f"lora_targets={self.lora_targets!r} must name modules, comma-separated, "
                                 "e.g. 'q_proj,k_proj,v_proj,o_proj'")
            self.lora_settings()
        elif self.lora_alpha is not None or self.lora_embed_norms:
            raise ParameterError("lora_alpha", f"lora_alpha={self.lora_alpha!r} / lora_embed_norms={self.lora_embed_norms!r} need "
                             "lora_r (the LoRA rank); valid: set lora_r, or leave them unset")

    def lora_settings(self):
        """The :class:`creamviz.lora.LoraSettings` of the ``lora_*`` fields (validated; seeded by
        ``seed``), or None for full fine-tuning."""
        from creamviz.lora import LoraSettings

        if self.lora_r is None:
            return None
        targets = tuple(t.strip() for t in str(self.lora_targets).split(",") if t.strip())
        alpha = 2.0 * self.lora_r if self.lora_alpha is None else self.lora_alpha
        return LoraSettings(r=self.lora_r, alpha=alpha, target_modules=targets, dropout=self.lora_dropout,
                            train_embeddings_and_norms=self.lora_embed_norms, seed=self.seed).validate()

    def lengths(self) -> Lengths:
        """N, L, the model's window W and both factors (reads the model's config once), checked:
        what cannot run (L inside W, a sampler default that does not fit N) raises ValueError."""
        lengths = Lengths.resolve(self.model, self.target_len, train_len=self.train_len, rope=self.rope,
                                  factor=self.factor)
        return lengths.check(self.sampler, self.sampler_params)

    def make_sampler(self, lengths: Lengths | None = None):
        """The position sampler at (N, L) (``lengths``, or :meth:`lengths` resolved now)."""
        from creamviz.samplers import make_sampler

        lengths = lengths or self.lengths()
        return make_sampler(self.sampler, train_len=lengths.train_len, target_len=lengths.target_len,
                            **self.sampler_params)


@dataclass
class TrainResult:
    """What :func:`train` did. ``loss_log`` rows: ``{"step", "loss", "learning_rate", "grad_norm"}``."""

    out_dir: pathlib.Path  # the run directory
    final_model: pathlib.Path | None  # out_dir / "final", or None when the run was stopped early
    loss_log: list[dict]  # one row per optimizer step, steps 1..steps_done (a resume keeps the earlier rows)
    steps_done: int  # optimizer steps completed (global step)
    wall_time_s: float  # seconds spent in Trainer.train of this call
    completed: bool  # steps_done == config.steps
    resumed_from: pathlib.Path | None = None  # the checkpoint this call continued from
    checkpoints: list[pathlib.Path] = field(default_factory=list)  # checkpoint dirs left in out_dir


# --------------------------------------------------------------------------- callbacks
class StopCallback(TrainerCallback):
    """Stop training after step ``at_step`` or as soon as :meth:`request` is called (e.g. from a
    notebook button in another thread). ``save=True`` also writes a checkpoint at that step, so a
    resume continues from exactly there."""

    def __init__(self, at_step: int | None = None, *, save: bool = False) -> None:
        self.at_step = at_step
        self.save = save
        self.requested = False

    def request(self) -> None:
        self.requested = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested or (self.at_step is not None and state.global_step >= self.at_step):
            control.should_training_stop = True
            control.should_save = control.should_save or self.save
        return control


class NonFiniteLossError(ValueError):
    """Training stopped because the loss, the gradient norm or the weights became NaN or infinite."""


class _FiniteGuard(TrainerCallback):
    """Stop at the first non-finite loss / grad norm, and never save non-finite weights.

    Runs after the other callbacks: a save requested for this step is cancelled when the loss or
    gradient norm just logged is not finite, or when any weight is (checked only at save steps).
    """

    def __init__(self) -> None:
        self.problem: str | None = None

    def _trip(self, control, problem: str):
        self.problem = self.problem or problem
        control.should_training_stop = True
        control.should_save = False

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                self._trip(control, f"{key} = {value} at step {state.global_step}")
        return control

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.problem:
            self._trip(control, self.problem)
        elif control.should_save and model is not None:
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                self._trip(control, f"non-finite weights after step {state.global_step}")
        return control


class _PositionLogWriter(TrainerCallback):
    """Append the collator's new records to a jsonl file at every save and at the end."""

    def __init__(self, collator: PositionCollator, path: pathlib.Path, consumed: int) -> None:
        self.collator, self.path, self.written = collator, path, 0
        self.consumed = consumed  # examples used per optimizer step (all processes together)

    def _flush(self, state):
        # the data loader collates one batch ahead: keep only rows of steps already taken, so a
        # resume (which redoes the steps after its checkpoint) never writes a row twice
        limit = state.global_step * self.consumed
        log = self.collator.log
        stop = self.written
        while stop < len(log) and (log[stop]["sample_index"] is None or log[stop]["sample_index"] < limit):
            stop += 1
        if stop > self.written:
            with self.path.open("a") as fh:
                fh.writelines(json.dumps(r) + "\n" for r in log[self.written:stop])
            self.written = stop

    def on_save(self, args, state, control, **kwargs):
        self._flush(state)

    def on_train_end(self, args, state, control, **kwargs):
        self._flush(state)


def _trim_positions(path: pathlib.Path, limit: int) -> None:
    """Keep the rows of ``path`` with ``sample_index < limit`` (the steps a checkpoint holds), once each."""
    if not path.is_file():
        return
    seen, kept = set(), []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        idx = row.get("sample_index")
        if idx is not None and (idx >= limit or idx in seen):
            continue
        seen.add(idx)
        kept.append(line + "\n")
    path.write_text("".join(kept))


CHECKPOINT_FILES = ("trainer_state.json", "scheduler.pt")  # written after the weights
# the optimizer state: plain / DDP, FSDP full state dict, FSDP sharded state dict (a directory)
OPTIMIZER_STATE = ("optimizer.pt", "optimizer.bin", "optimizer_0")


def complete_checkpoints(out: pathlib.Path) -> tuple[list[pathlib.Path], dict[str, str]]:
    """The complete ``checkpoint-<step>`` directories of ``out`` (oldest first) and, for the others,
    why they are incomplete (a kill during a save leaves weights without state, or cut files)."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    from creamviz.models import check_safetensors_file

    good, bad = [], {}
    dirs = [d for d in out.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if d.is_dir() and d.name.split("-")[-1].isdigit()]
    for d in sorted(dirs, key=lambda d: int(d.name.split("-")[-1])):
        missing = [f for f in CHECKPOINT_FILES if not (d / f).is_file()]
        if not any((d / f).exists() for f in OPTIMIZER_STATE):
            missing.append(" or ".join(OPTIMIZER_STATE))
        weights = sorted(d.glob("*.safetensors"))
        if missing or not (weights or (d / "pytorch_model_fsdp_0").is_dir()):
            bad[d.name] = f"missing {', '.join(missing or ['*.safetensors'])}"
            continue
        try:
            json.loads((d / "trainer_state.json").read_text())
            for w in weights:
                check_safetensors_file(w)
        except (ValueError, OSError) as err:
            bad[d.name] = str(err)
            continue
        good.append(d)
    return good, bad


# --------------------------------------------------------------------------- helpers
def _git_commit() -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout holding creamviz."""
    root = pathlib.Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return {"commit": sha, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _version() -> str | None:
    try:
        from importlib.metadata import version

        return version("creamviz")
    except Exception:  # not installed (running from a checkout)
        return None


_RESUMABLE = {"steps", "resume", "progress", "out", "cpu"}  # may change between a run and its resume


def _check_resume_config(out: pathlib.Path, config: TrainConfig) -> None:
    saved_path = out / CONFIG_FILE
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text())
    now = json.loads(json.dumps(asdict(config)))
    diff = sorted(k for k in now if k not in _RESUMABLE and saved.get(k) != now[k])
    if diff:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in diff)
        raise ValueError(f"resume=True with a config that differs from the run in {out}: {detail}")


def _loss_log(log_history: list[dict]) -> list[dict]:
    rows = {}
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            rows[int(entry["step"])] = {"step": int(entry["step"]), "loss": float(entry["loss"]),
                                        "learning_rate": entry.get("learning_rate"),
                                        "grad_norm": entry.get("grad_norm")}
    return [rows[s] for s in sorted(rows)]


# --------------------------------------------------------------------------- data and arguments
def training_dataset(config: TrainConfig, tokenizer, window: int, n_windows: int, *, process_first=None):
    """The fine-tuning rows of ``config.data`` (``n_windows`` items of ``window`` tokens).

    - None / a ``.txt`` file: seeded windows of the token stream (:class:`WindowDataset`);
    - ``"mix"``: the tiny base's pre-training mixture (:class:`MixtureDataset`);
    - a ``save_to_disk`` directory or a ``.jsonl`` / ``.json`` / ``.parquet`` file: one document
      per row (``input_ids``, ``text`` or chat ``messages``; :func:`creamviz.data.load_documents`),
      cut to its first ``window`` tokens (:class:`creamviz.data.DocumentDataset`).
    ``process_first``: a context manager run around tokenization (``TrainingArguments.main_process_first``
    under several processes, so the main process fills the datasets cache first).
    """
    from contextlib import nullcontext

    from creamviz import data as cdata

    if config.data == "mix":
        return MixtureDataset(tokenizer, window, n_windows, config.seed)
    if cdata.is_dataset_source(config.data):
        with process_first() if process_first else nullcontext():
            docs, column = cdata.load_documents(config.data, tokenizer, column=config.data_column,
                                                chat_labels=config.chat_labels)
        need = (f" (tokens='aligned' needs documents of L = target_len = {window} tokens)"
                if config.tokens == "aligned" else
                f" (tokens='contiguous' feeds windows of N = train_len = {window} tokens)")
        return cdata.DocumentDataset(docs, window, n_windows, config.seed, source=config.data,
                                     column=column, short=config.short_docs, need=need)
    token_ids = tokenizer(read_corpus(config.data), add_special_tokens=False)["input_ids"]
    return WindowDataset(token_ids, window, n_windows, config.seed)


def _memory_arguments(config: TrainConfig) -> dict:
    """TrainingArguments for the memory knobs: bf16, gradient checkpointing (the model's own,
    non-reentrant; ``activation_checkpointing`` in transformers >= 5.x, ``gradient_checkpointing``
    before) and the optimizer name."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    out = {"bf16": config.bf16, key: config.gradient_checkpointing}
    if config.gradient_checkpointing:
        out[f"{key}_kwargs"] = {"use_reentrant": False}
    if config.optim is not None:
        out["optim"] = config.optim
    return out


def distributed_info(trainer) -> dict:
    """How the run was distributed: accelerate's type (NO, MULTI_CPU, MULTI_GPU, FSDP, DEEPSPEED),
    processes, mixed precision, and the FSDP / ZeRO set-up when sharded. ``requested_but_ignored``
    names a sharding asked for in the environment (``accelerate launch --config_file``) that
    accelerate did not apply (it ignores FSDP and DeepSpeed for CPU processes)."""
    import os

    acc = trainer.accelerator
    state = acc.state
    kind = str(getattr(state.distributed_type, "value", state.distributed_type))
    info = {"type": kind, "num_processes": int(acc.num_processes),
            "mixed_precision": str(acc.mixed_precision)}
    plugin = getattr(state, "fsdp_plugin", None)
    if kind == "FSDP" and plugin is not None:
        info["fsdp"] = {"version": getattr(plugin, "fsdp_version", None),
                        "reshard_after_forward": str(getattr(plugin, "reshard_after_forward", None)),
                        "state_dict_type": str(getattr(plugin, "state_dict_type", None)),
                        "cpu_offload": str(getattr(plugin, "cpu_offload", None))}
    ds = getattr(state, "deepspeed_plugin", None)
    if kind == "DEEPSPEED" and ds is not None:
        zero = (ds.deepspeed_config or {}).get("zero_optimization", {})
        info["zero"] = {"stage": zero.get("stage"), "offload_optimizer": zero.get("offload_optimizer"),
                        "offload_param": zero.get("offload_param")}
    asked = [name for name, env in (("FSDP", "ACCELERATE_USE_FSDP"), ("DEEPSPEED", "ACCELERATE_USE_DEEPSPEED"))
             if os.environ.get(env, "false").lower() == "true"]
    if asked and kind not in asked:
        info["requested_but_ignored"] = asked[0]
    return info


# --------------------------------------------------------------------------- the run, step by step
def _resume_point(out: pathlib.Path, config: TrainConfig) -> pathlib.Path | None:
    """The checkpoint to continue from (``resume=True``), or None for a fresh run. Refuses a fresh
    run over existing checkpoints and a resume whose config differs; warns about skipped ones."""
    from transformers.trainer_utils import get_last_checkpoint

    complete, incomplete = complete_checkpoints(out) if out.is_dir() else ([], {})
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    if last is not None and not config.resume:
        raise ParameterError("out", f"out={str(out)!r} already holds checkpoints ({pathlib.Path(last).name}); "
                             "pass resume=True to continue that run, or choose a new out directory")
    if not config.resume:
        return None
    if out.is_dir():
        _check_resume_config(out, config)
    newest = int(complete[-1].name.split("-")[-1]) if complete else -1
    newer = {k: v for k, v in incomplete.items() if int(k.split("-")[-1]) > newest}
    if newer:
        warnings.warn(f"resume: skipping incomplete checkpoint(s) in {out} "
                      f"({'; '.join(f'{k}: {v}' for k, v in newer.items())}); "
                      + (f"resuming from {complete[-1].name}" if complete else "no complete one is left"),
                      stacklevel=3)
    if not complete:
        if not newer:  # nothing to resume yet: a normal first run, not a problem
            logging.getLogger(__name__).info("resume=True and %s holds no checkpoint yet: starting a fresh run", out)
        return None
    return complete[-1]


def _training_arguments(config: TrainConfig):
    """The ``transformers.TrainingArguments`` of the run (one loss per step, safetensors checkpoints,
    sequential order: the windows are already random and ``sample_index`` orders them)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=config.out,
        max_steps=config.steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        lr_scheduler_type=config.lr_schedule,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        logging_strategy="steps",
        logging_steps=1,  # one loss per optimizer step
        logging_nan_inf_filter=False,  # log a NaN loss as NaN (the filter would hide it behind the mean)
        save_strategy="steps",
        save_steps=config.save_every,
        save_total_limit=config.keep_checkpoints,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",  # no integrations, no network
        remove_unused_columns=False,  # keep sample_index for the collator (position_ids is kept anyway)
        train_sampling_strategy="sequential",  # windows are already random; order = sample_index
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=not config.progress,
        **_memory_arguments(config),  # bf16, gradient checkpointing, optim
        ddp_find_unused_parameters=False,  # every parameter is used; skips an autograd traversal
        use_cpu=(not torch.cuda.is_available()) if config.cpu is None else config.cpu,
    )


def _training_rows(config: TrainConfig, lengths: Lengths, tokenizer, args, dataset=None, *, vocab_size: int):
    """The rows the run consumes: ``dataset`` (checked for size) or :func:`training_dataset` —
    N-token windows (contiguous) or L-token documents (aligned). A source that cannot be read or
    holds bad rows (e.g. token ids outside the model's ``vocab_size``) is blamed on ``data``."""
    window = lengths.train_len if config.tokens == "contiguous" else lengths.target_len
    n_windows = config.steps * config.batch_size * config.grad_accum * max(1, args.world_size)
    if dataset is not None:
        if len(dataset) < n_windows:
            raise ParameterError("data", f"dataset has {len(dataset)} rows; the run needs n_windows={n_windows}")
        return dataset
    try:
        rows = training_dataset(config, tokenizer, window, n_windows,
                                process_first=lambda: args.main_process_first(desc="data"))
        _check_token_ids(rows, vocab_size)
    except ParameterError:
        raise
    except ValueError as err:
        raise ParameterError("data", f"data={config.data!r}: {err}") from None
    return rows


def _check_token_ids(rows, vocab_size: int, *, probe: int = 64) -> None:
    """Refuse rows holding token ids outside ``[0, vocab_size)`` (an embedding lookup would fail
    mid-run); the first ``probe`` rows are read."""
    for i in range(min(probe, len(rows))):
        ids = np.asarray(rows[i]["input_ids"])
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            bad = int(ids.max() if ids.max() >= vocab_size else ids.min())
            raise ValueError(f"row {i} holds token id {bad}, outside the model's vocabulary [0, {vocab_size})")


def _start_run_dir(out: pathlib.Path, config: TrainConfig, resumed_from) -> None:
    """Create ``out`` and, for a fresh run, record the config as given (compared on resume)."""
    out.mkdir(parents=True, exist_ok=True)
    if resumed_from is None:
        (out / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2))


def _position_log(config: TrainConfig, out: pathlib.Path, collator, args, resumed_from) -> list:
    """The callback writing the sampled layouts to ``positions*.jsonl`` (``record_positions``), with
    rows drawn after the resume point dropped (they are drawn again)."""
    if not config.record_positions:
        return []
    per_step = config.batch_size * config.grad_accum * max(1, args.world_size)  # examples per step
    suffix = "" if args.world_size <= 1 else f".rank{args.process_index}"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"positions{suffix}.jsonl"
    if resumed_from is None:
        path.unlink(missing_ok=True)  # stale records of an earlier, restarted run
    else:
        resumed_step = json.loads((resumed_from / "trainer_state.json").read_text())["global_step"]
        _trim_positions(path, int(resumed_step) * per_step)
    return [_PositionLogWriter(collator, path, per_step)]


def _write_loss_log(out: pathlib.Path, loss_log: list[dict]) -> None:
    """``out/loss_log.jsonl``: one row per optimizer step (the only place it is written)."""
    with (out / "loss_log.jsonl").open("w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in loss_log)


def _run_metadata(config: TrainConfig, lengths: Lengths, sampler, model, trainer, args, *, steps: int,
                  wall: float, resumed_from, loss_log: list[dict]) -> dict:
    """What :data:`RUN_METADATA` records beside the final model."""
    import transformers

    return {
        "creamviz_version": _version(),
        "git": _git_commit(),
        "sampler": {"name": config.sampler, "params": sampler.params},
        "tokens": config.tokens,
        "rope": {"type": config.rope, "factor": lengths.rope_factor,
                 "rope_parameters": getattr(model.config, "rope_parameters", None)},
        "seed": config.seed,
        "base_model": config.model,
        "train_len": lengths.train_len,
        "target_len": lengths.target_len,
        "lengths": lengths.report(config.sampler, config.sampler_params),  # N, L, W, L/N, L/W
        "distributed": distributed_info(trainer),
        "memory": {"bf16": config.bf16, "gradient_checkpointing": config.gradient_checkpointing,
                   "optim": args.optim if isinstance(args.optim, str) else getattr(args.optim, "value", None)},
        "steps": steps,
        "world_size": args.world_size,
        "wall_time_s": wall,
        "resumed_from": str(resumed_from) if resumed_from else None,
        "lora": config.lora_settings().record() if config.lora_r is not None else None,  # final/ holds the adapter
        "final_loss": loss_log[-1]["loss"] if loss_log else None,
        "config": asdict(replace(config, train_len=lengths.train_len)),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def train(config: TrainConfig, callbacks: Sequence = (), *, dataset=None,
          lengths: Lengths | None = None) -> TrainResult:
    """Fine-tune ``config.model`` for ``config.steps`` steps with sampled position ids.

    Each training example is a window cut from the corpus at a seeded offset (N tokens for
    ``tokens="contiguous"``, L tokens for ``"aligned"``); :class:`PositionCollator` turns it into N
    tokens with the sampler's ids. RoPE is interpolated by ``factor`` (default L / W, W = the
    model's pre-trained window; the sampler's own factor is L / N, see :class:`Lengths`).
    ``data`` may also be a ``datasets`` source (:func:`training_dataset`). Checkpoints
    (``model.safetensors`` + optimizer/scheduler/RNG state) go to ``out/checkpoint-<step>`` every
    ``save_every`` steps; ``resume=True`` continues from the newest one with the same data, ids and
    RNG states, so the resumed run equals an uninterrupted one step for step. A completed run saves
    ``out/final`` (safetensors, tokenizer, :data:`RUN_METADATA`). ``callbacks`` are extra
    ``transformers.TrainerCallback`` objects. ``dataset`` replaces the one ``config.data`` names (a
    map-style dataset of at least ``steps * batch_size * grad_accum`` rows in the collator's format;
    ``config.data`` is then a label). ``lengths``: the run's :class:`Lengths` when the caller has
    resolved them already (else :meth:`TrainConfig.lengths`). Works unchanged under
    ``accelerate launch`` (every process calls ``train``; rank 0 writes); a script calling it there
    should end with ``gc.collect(); torch.distributed.destroy_process_group()``, as ``creamviz train``
    does (gloo can abort a process that leaves its group to interpreter shutdown).
    """
    from transformers import Trainer

    from creamviz import models

    config.validate(data_is_label=dataset is not None)
    if lengths is None:
        lengths = config.lengths()
    elif (lengths.target_len, lengths.rope, lengths.factor) != (config.target_len, config.rope, config.factor) \
            or config.train_len not in (None, lengths.train_len):
        raise ValueError(f"lengths={lengths} do not belong to this config (target_len={config.target_len}, "
                         f"train_len={config.train_len}, rope={config.rope!r}, factor={config.factor})")
    sampler = config.make_sampler(lengths)  # bad sampler parameters fail before anything is loaded
    out = pathlib.Path(config.out)
    resumed_from = _resume_point(out, config)
    args = _training_arguments(config)
    tokenizer = models.load_tokenizer(config.model)
    model = lengths.load_model(config.model, attn=config.attn)
    if config.lora_r is not None:  # LoRA: only the adapters (and LongLoRA's extras) train
        from creamviz.lora import apply_lora

        model = apply_lora(model, config.lora_settings())
        if config.gradient_checkpointing:
            model.enable_input_require_grads()  # checkpointed blocks need a grad-carrying input
    rows = _training_rows(config, lengths, tokenizer, args, dataset,  # before anything is written
                          vocab_size=model.get_input_embeddings().num_embeddings)
    collator = PositionCollator(sampler, tokenizer, tokens=config.tokens, seed=config.seed,
                                record=config.record_positions)
    is_main = args.process_index == 0
    if is_main:
        _start_run_dir(out, config, resumed_from)
    guard = _FiniteGuard()  # last: it may cancel a save the others asked for
    cbs = [*callbacks, *_position_log(config, out, collator, args, resumed_from), guard]

    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collator,
                      processing_class=tokenizer, callbacks=cbs)
    if not config.progress:  # without tqdm, Trainer prints every log dict; the loss log keeps them anyway
        trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    with models.no_progress_bars():  # no "Writing model shards" bar at every checkpoint
        trainer.train(resume_from_checkpoint=str(resumed_from) if resumed_from else None)
    wall = time.perf_counter() - start

    steps_done = int(trainer.state.global_step)
    loss_log = _loss_log(trainer.state.log_history)
    if is_main:
        _write_loss_log(out, loss_log)
    if guard.problem:
        kept = complete_checkpoints(out)[0]
        raise NonFiniteLossError(
            f"training stopped: {guard.problem}; nothing was saved after it "
            f"(last good checkpoint: {kept[-1].name if kept else 'none'}). Lower lr, raise warmup_steps or "
            "check the data; loss_log.jsonl holds the steps taken")
    completed = steps_done >= config.steps
    final = out / "final" if completed else None
    if completed:
        with models.no_progress_bars():
            trainer.save_model(str(final))  # safetensors + config (+ tokenizer); rank 0 writes
        if is_main:
            (final / "training_args.bin").unlink(missing_ok=True)  # a pickle; the json below has it all
            meta = _run_metadata(config, lengths, sampler, model, trainer, args, steps=steps_done, wall=wall,
                                 resumed_from=resumed_from, loss_log=loss_log)
            (final / RUN_METADATA).write_text(json.dumps(meta, indent=2, default=str))
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return TrainResult(out_dir=out, final_model=final, loss_log=loss_log, steps_done=steps_done,
                       wall_time_s=wall, completed=completed, resumed_from=resumed_from,
                       checkpoints=checkpoints)
