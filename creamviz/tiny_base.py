"""Rebuild the tiny base checkpoint shipped in ``creamviz/resources/tiny-base/``: ``creamviz pretrain --out DIR``.

Recipe (all defaults in ``PretrainConfig``): a ``tiny_llama()`` (about 1.1M parameters, byte tokens)
pre-trained with window N = 256 on rows of exactly N tokens, each row one or several segments joined
by ``</s>``: natural text (the CPython documentation corpus in ``creamviz/resources/corpus/``, train split) and the
synthetic retrieval tasks of ``creamviz.tasks`` (key-value with extra queries, Lines, passkey, NIAH)
at random lengths <= N. Plain next-token loss on every token, AdamW, cosine schedule, a plain torch
loop (readable; no Trainer needed for a single CPU process). Every ``eval_every`` steps the in-window
accuracy (greedy-equivalent, teacher-forced) on 200 fixed key-value prompts at 256 tokens is logged.

Everything is seeded: the data come from ``numpy.random.default_rng(seed)``, the init from
``tiny_llama(seed=seed)``; there is no dropout, so a run is deterministic on a given machine and
torch build (thread count can change float summation order slightly).
"""

from __future__ import annotations

import csv
import json
import pathlib
import time
import warnings
from dataclasses import asdict, dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from creamviz import tasks
from creamviz.data import MIN_BUDGET, Mixture, MixtureConfig
from creamviz.models import BASE_CHECKPOINT, FastByteTokenizer, tiny_llama
from creamviz.validation import option


@dataclass
class PretrainConfig(MixtureConfig):
    """The tiny base's pre-training recipe: the data mixture (:class:`MixtureConfig`) plus the loop."""

    out: str = option(str(BASE_CHECKPOINT), "output directory (safetensors checkpoint + recipe + loss log; "
                      "required on the command line)")
    steps: int = option(8000, "length of the lr schedule (optimizer steps)", low=1)
    stop_after: int | None = option(6000, "stop (and save) after this many steps; none = run all steps", low=1)
    lr: float = option(2e-3, "peak AdamW learning rate", low=0.0, low_open=True)
    min_lr: float = option(1e-4, "cosine floor", low=0.0)
    warmup: int = option(100, "linear warm-up steps", low=0)
    weight_decay: float = option(0.05, "AdamW decoupled weight decay", low=0.0)
    grad_clip: float = option(1.0, "max global grad norm", low=0.0, low_open=True)
    threads: int = option(2, "torch.set_num_threads", low=1)
    device: str = option("cpu", "the shipped checkpoint's device is stated in its README", choices=("cpu", "cuda"))
    eval_every: int = option(250, "steps between in-window accuracy checks", low=1)
    n_checks: int = option(200, "kv examples in the in-window check (lines / passkey / niah: a quarter each)", low=1)
    save_every: int = option(1000, "steps between checkpoint saves (the out dir is overwritten)", low=1)
    log_every: int = option(10, "steps between loss-log lines", low=1)
    model: dict = option(help="TinyConfig overrides", default_factory=dict, cli=False)


def weighted_lm_loss(logits: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy, token t+1 weighted by ``weights[:, t+1]``; weighted mean.

    logits (batch, T, vocab), ids / weights (batch, T)."""
    ce = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten(), reduction="none")  # (batch*(T-1),)
    w = weights[:, 1:].flatten()
    return (ce * w).sum() / w.sum().clamp_min(1e-8)


# ----------------------------------------------------------------------------- in-window check

@torch.no_grad()
def teacher_forced_accuracy(model, examples, tokenizer, batch_size: int = 50) -> float:
    """Share of examples whose answer tokens are all the argmax under teacher forcing.

    Equals the greedy-decoding exact-prefix accuracy (greedy emits the answer iff each answer token
    is the argmax given the previous answer tokens), at the cost of one forward pass.
    """
    model.eval()
    correct = 0
    for i in range(0, len(examples), batch_size):
        chunk = examples[i:i + batch_size]
        seqs = [ex.prompt_ids + tokenizer(ex.answer, add_special_tokens=False)["input_ids"]
                for ex in chunk]
        ids = pad_sequence([torch.tensor(s) for s in seqs], batch_first=True)  # (batch, T), right-padded
        mask = pad_sequence([torch.ones(len(s), dtype=torch.long) for s in seqs], batch_first=True)
        ids, mask = ids.to(model.device), mask.to(model.device)
        pred = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)  # (batch, T)
        for r, (ex, s) in enumerate(zip(chunk, seqs, strict=True)):
            a0 = len(ex.prompt_ids)
            correct += bool((pred[r, a0 - 1:len(s) - 1] == ids[r, a0:len(s)]).all())
    return correct / len(examples)


def inwindow_examples(tokenizer, n: int = 200, length: int = 256, task: str = "kv", seed: int = 20_000):
    """Fixed in-window check set: ``n`` examples at ``length`` tokens, gold index uniform at random."""
    gen = tasks.GENERATORS[task]
    return [gen(tokenizer, length, seed=seed + i) for i in range(n)]


# ----------------------------------------------------------------------------- loop

def lr_schedule(optimizer, cfg: PretrainConfig):
    """Linear warm-up to ``lr`` over ``warmup`` steps, then a cosine down to ``min_lr`` at ``steps``:
    transformers' ``get_cosine_with_min_lr_schedule_with_warmup``, stepped once before the first
    optimizer step so that step 1 already trains at ``lr / warmup``.

    The shipped checkpoint was trained by a hand-written loop with the same warm-up and the cosine
    evaluated one step earlier (``(s - warmup) / (steps - warmup)`` at 0-based step ``s``, here
    ``(s + 1 - warmup) / ...``): at most 0.1% relative difference over its 8000-step schedule.
    """
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    schedule = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, num_warmup_steps=cfg.warmup, num_training_steps=cfg.steps, min_lr=cfg.min_lr)
    with warnings.catch_warnings():  # stepping before the first optimizer step is the point here
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
        schedule.step()  # lr of the first step: lr / warmup, not 0
    return schedule


def _save(model, cfg: PretrainConfig, out: pathlib.Path, step: int, metrics: dict) -> None:
    model.save_pretrained(out)  # safetensors
    (out / "pretrain_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps({"step": step, **metrics}, indent=2) + "\n")


def pretrain(cfg: PretrainConfig, *, progress: bool = True) -> dict:
    """Run the pre-training loop; writes the checkpoint, ``loss_log.csv`` and metrics into ``cfg.out``."""
    torch.set_num_threads(cfg.threads)
    out = pathlib.Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = FastByteTokenizer()
    model = tiny_llama(seed=cfg.seed, max_position_embeddings=cfg.seq_len, **cfg.model)
    model.to(cfg.device).train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    data = Mixture(cfg, tok)
    checks = {t: inwindow_examples(tok, n=cfg.n_checks if t == "kv" else max(1, cfg.n_checks // 4),
                                   length=cfg.seq_len, task=t)
              for t in ("kv", "lines", "passkey", "niah") if MIN_BUDGET[t] <= cfg.seq_len}
    log = open(out / "loss_log.csv", "w", newline="")
    writer = csv.writer(log)
    writer.writerow(["step", "loss", "lr", "seconds", *(f"{t}_acc" for t in checks)])
    metrics: dict = {"n_params": model.num_parameters()}
    t0 = time.time()
    ema = None
    last = cfg.steps if cfg.stop_after is None else min(cfg.steps, cfg.stop_after)
    schedule = lr_schedule(opt, cfg)
    for step in range(1, last + 1):
        lr = schedule.get_last_lr()[0]  # the lr of this step
        ids, weights = data.batch()  # (batch, N) each
        ids, weights = ids.to(cfg.device), weights.to(cfg.device)
        loss = weighted_lm_loss(model(input_ids=ids).logits, ids, weights)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        schedule.step()
        opt.zero_grad(set_to_none=True)
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        accs = {}
        if step % cfg.eval_every == 0 or step == last:
            accs = {t: teacher_forced_accuracy(model, ex, tok) for t, ex in checks.items()}
            model.train()
        if step % cfg.log_every == 0 or accs:
            writer.writerow([step, f"{loss.item():.4f}", f"{lr:.3e}", f"{time.time() - t0:.1f}",
                             *(f"{accs[t]:.3f}" if accs else "" for t in checks)])
            log.flush()
            if progress:
                extra = " ".join(f"{t}={a:.3f}" for t, a in accs.items())
                print(f"step {step}/{cfg.steps} loss {loss.item():.3f} (ema {ema:.3f}) lr {lr:.2e} "
                      f"{time.time() - t0:.0f}s {extra}", flush=True)
        if accs:
            metrics.update({f"inwindow_{t}_acc": a for t, a in accs.items()})
        if step % cfg.save_every == 0 or step == last:
            metrics.update(final_loss_ema=ema, seconds=time.time() - t0)
            _save(model, cfg, out, step, metrics)
    log.close()
    return metrics


# ----------------------------------------------------------------------------- CLI

def write_corpus(path: pathlib.Path = tasks.CORPUS_PATH) -> int:
    """Regenerate ``creamviz/resources/corpus/pydoc_topics.txt`` from this Python's ``pydoc_data.topics``."""
    import pydoc_data.topics as topics
    import unicodedata

    parts = []
    for name in sorted(topics.topics):
        text = unicodedata.normalize("NFKD", topics.topics[name]).encode("ascii", "ignore").decode()
        parts.append(text.strip() + "\n")
    text = "\f\n".join(parts)
    pathlib.Path(path).write_text(text, encoding="ascii")
    return len(text)
