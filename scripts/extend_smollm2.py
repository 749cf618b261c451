"""Extend SmolLM2-135M-Instruct from its window N = 8192 to L = 32768 with CREAM and with PoSE
(LoRA, YaRN, same data / steps / lr / seed), then evaluate base, CREAM and PoSE at 32K.

Parts (each resumable; a call stops itself after ``--max-minutes`` and the next call continues):

1. ``train``: for each method, ``creamviz.training.train`` with LoRA (``--lora-r``, ``--lora-alpha``,
   attention projections; ``--lora-embed-norms`` for LongLoRA's variant), YaRN factor L / N,
   ``--steps`` steps of ``--batch`` windows of N tokens, the same ``--data`` and ``--seed``.
   A call that reaches its time budget checkpoints and exits; the next resumes from the checkpoint.
2. ``eval``: for base / cream / pose at L (each from ``load_model("smollm2-135m", rope="yarn",
   factor=L/N)``, the fine-tunes with their adapter merged):
   - Lost in the Middle key-value retrieval in LitM's form (its prompt template, UUID pairs) with
     75 and 140 keys, the gold key at LitM's positions (75 keys: 0, 24, 49, 74; 140 keys: 0, 34, 69,
     104, 139), LitM's generation budget of 100 new tokens, scored by the value appearing in the
     answer (``tasks.score``);
   - needle-in-a-haystack tasks of RULER's families at L (``niah_chat``, ``multikey_niah``,
     ``multivalue_niah``) in RULER's noise haystack (the repeated "The grass is green. ..." of its
     niah_single_1), RULER's string-match-all scorer (``tasks.ruler_score``) for the multi-needle ones;
   - passkey retrieval (``passkey_chat``) at N, L / 2 and L over depths.
   Records are written after every shared-context group (``evaluate.evaluate_resumable``).
3. ``heads``: retrieval scores (Wu et al. 2024; ``creamviz.retrieval_heads``) of every head of the
   three models on passkey prompts at L, and masking of the top-k heads vs k random heads.

Everything lands in ``--out`` (``results/<model>/<part>.json``, ``runs/<method>``, ``summary.json``).
Exit status 0 when every part is done, 3 when the time budget ended a call early (run it again).

    python scripts/extend_smollm2.py --out runs/extend_smollm2           # on a GPU machine, repeatedly
    python scripts/extend_smollm2.py --cpu-smoke --out /tmp/smoke        # tiny sizes on the CPU
"""

from __future__ import annotations

import argparse
import inspect
import json
import pathlib
import sys
import time
from dataclasses import asdict, dataclass

MODEL = "smollm2-135m"
METHODS = ("cream", "pose")
DONE, OUT_OF_TIME = 0, 3


@dataclass
class ExtendConfig:
    """One extension experiment: base -> CREAM / PoSE at L, and what is evaluated there."""

    model: str = MODEL  # base model (a named model or directory)
    train_len: int = 8192  # N, tokens per training window (SmolLM2's window)
    target_len: int = 32768  # L, the length extended to
    steps: int = 400  # optimizer steps per method
    batch: int = 1  # windows per step
    grad_accum: int = 8  # micro-batches per step (8 windows of N per step)
    lr: float = 2e-4  # LoRA learning rate (constant after warm-up)
    warmup_steps: int = 20  # linear warm-up
    seed: int = 0  # data windows, position ids, LoRA init
    data: str | None = None  # training text: None = the package corpus; or a file / dataset (see TrainConfig.data)
    lora_r: int = 8  # LoRA rank on q, k, v, o
    lora_alpha: float = 16.0  # LoRA scale alpha (update x alpha / r)
    lora_embed_norms: bool = False  # LongLoRA's variant: also train embeddings and norms (a 100+ MB adapter)
    bf16: bool = True  # bf16 mixed precision (GPU)
    gradient_checkpointing: bool = True  # activations recomputed in backward (N = 8192 windows)
    litm_keys: tuple[int, ...] = (75, 140)  # LitM key-value prompt sizes
    litm_new_tokens: int = 100  # LitM's generation budget
    litm_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # prompts per gold position
    ruler_tasks: tuple[str, ...] = ("niah_chat", "multikey_niah", "multivalue_niah")  # needle tasks at L
    ruler_n: int = 20  # prompts per needle task (depths spread evenly)
    passkey_lengths: tuple[int, ...] | None = None  # None -> (N, L / 2, L)
    passkey_n: int = 10  # prompts per passkey length
    heads_length: int | None = None  # retrieval-score prompt length; None -> L
    heads_depths: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)  # needle depths of the retrieval-score prompts
    heads_seeds: tuple[int, ...] = (0, 1)  # prompts per depth
    heads_ks: tuple[int, ...] = (1, 5, 10, 20)  # heads masked
    heads_random: int = 5  # random draws of k heads per k
    sampler_k: int | None = None  # CREAM's k; None -> the sampler's default (4 L / N)
    cpu: bool = False  # force the CPU

    @property
    def factor(self) -> float:
        return self.target_len / self.train_len


def smoke_config() -> ExtendConfig:
    """Tiny sizes for the CPU: the tiny byte-level model (N = 256 -> L = 1024), 2 steps, a few prompts."""
    return ExtendConfig(model="tiny", train_len=256, target_len=1024, steps=2, batch=1, grad_accum=1, lr=1e-3,
                        warmup_steps=0, lora_r=4, lora_alpha=8.0, bf16=False, gradient_checkpointing=False,
                        litm_keys=(3,), litm_new_tokens=8, litm_seeds=(0,), ruler_tasks=("niah_chat",), ruler_n=1,
                        passkey_lengths=(512,), passkey_n=1, heads_length=512, heads_depths=(0.5,), heads_seeds=(0,),
                        heads_ks=(1,), heads_random=1, sampler_k=8, cpu=True)


# --------------------------------------------------------------------------- parts
class TimeBudget:
    """Seconds left of this call's budget."""

    def __init__(self, minutes: float) -> None:
        self.end = time.monotonic() + 60.0 * minutes

    def left(self) -> float:
        return self.end - time.monotonic()


def train_method(cfg: ExtendConfig, method: str, out: pathlib.Path, budget: TimeBudget) -> bool:
    """Train (or continue training) one method; True once its final adapter exists."""
    from creamviz.training import StopCallback, TrainConfig, train

    run = out / "runs" / method
    if (run / "final" / "adapter_model.safetensors").is_file():
        return True

    class StopInTime(StopCallback):  # checkpoint and stop when the next step might not fit the budget
        def __init__(self):
            super().__init__(save=True)
            self.last = None

        def on_step_end(self, args, state, control, **kwargs):
            now = time.monotonic()
            step_s = 0.0 if self.last is None else now - self.last
            self.last = now
            if budget.left() < 2 * step_s + 30:
                self.request()
            return super().on_step_end(args, state, control, **kwargs)

    params = {} if cfg.sampler_k is None or method != "cream" else {"k": cfg.sampler_k}
    config = TrainConfig(model=cfg.model, sampler=method, sampler_params=params, rope="yarn", train_len=cfg.train_len,
                         target_len=cfg.target_len, steps=cfg.steps, batch_size=cfg.batch, grad_accum=cfg.grad_accum,
                         lr=cfg.lr, warmup_steps=cfg.warmup_steps, seed=cfg.seed, data=cfg.data,
                         save_every=max(1, cfg.steps // 8), keep_checkpoints=1, out=str(run), resume=True,
                         bf16=cfg.bf16, gradient_checkpointing=cfg.gradient_checkpointing, progress=False,
                         lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_embed_norms=cfg.lora_embed_norms,
                         cpu=True if cfg.cpu else None)
    result = train(config, callbacks=[StopInTime()])
    return result.completed


def load(cfg: ExtendConfig, name: str, out: pathlib.Path):
    """(model, tokenizer) of base / cream / pose at L (YaRN factor L / N; adapters merged)."""
    import torch

    from creamviz import models

    adapter = None if name == "base" else out / "runs" / name / "final"
    dtype = torch.bfloat16 if (cfg.bf16 and torch.cuda.is_available() and not cfg.cpu) else None
    model = models.load_model(cfg.model, rope="yarn", factor=cfg.factor, adapter=adapter, merge=adapter is not None,
                              dtype=dtype)
    if torch.cuda.is_available() and not cfg.cpu:
        model = model.cuda()
    return model, models.load_tokenizer(cfg.model)


LITM_GOLD = {75: (0, 24, 49, 74), 140: (0, 34, 69, 104, 139)}  # LitM's gold positions


def eval_examples(cfg: ExtendConfig, tok) -> dict[str, list]:
    """The prompts of each evaluation, by name."""
    from creamviz import tasks

    L, N = cfg.target_len, cfg.train_len
    sets = {}
    # RULER's noise haystack (its niah_single_1 one: the passkey filler repeated), long enough for L;
    # the package's held-out corpus holds only ~8K SmolLM2 tokens
    noise = [" ".join(tasks.PASSKEY_FILLER)] * (L // 8)
    for n in cfg.litm_keys:
        golds = LITM_GOLD.get(n, tuple(sorted({0, (n - 1) // 2, n - 1})))
        # the pairs fit any budget: LitM's prompts are sized by their number of keys, not by a length
        sets[f"litm_kv_{n}"] = [tasks.kv_uuid(tok, L, n_pairs=n, gold_index=g, seed=s) for g in golds
                                for s in cfg.litm_seeds]
    for name in cfg.ruler_tasks:
        gen = tasks.GENERATORS.get(name) or tasks.RULER_GENERATORS[name]
        depths = [(i + 0.5) / cfg.ruler_n for i in range(cfg.ruler_n)]
        takes_depth = "depth" in inspect.signature(gen).parameters  # multivalue_niah places its needles itself
        extra = {"haystack": noise} if "haystack" in inspect.signature(gen).parameters else {}
        sets[f"{name}_{L}"] = [gen(tok, L, depth=d, seed=i, **extra) if takes_depth else gen(tok, L, seed=i, **extra)
                               for i, d in enumerate(depths)]
    lengths = cfg.passkey_lengths or (N, L // 2, L)
    for length in lengths:
        depths = [(i + 0.5) / cfg.passkey_n for i in range(cfg.passkey_n)]
        sets[f"passkey_chat_{length}"] = [tasks.passkey_chat(tok, int(length), depth=d, seed=i)
                                          for i, d in enumerate(depths)]
    return sets


def evaluate_model(cfg: ExtendConfig, name: str, out: pathlib.Path, budget: TimeBudget, sets: dict) -> bool:
    """Every evaluation of one model; True when all are complete."""
    from creamviz import evaluate

    model = tok = None
    folder = out / "results" / name
    folder.mkdir(parents=True, exist_ok=True)
    all_done = True
    for key, examples in sets.items():
        path = folder / f"{key}.json"
        if path.is_file() and len(json.loads(path.read_text())["records"]) >= len(examples):
            continue
        if budget.left() < 60:
            all_done = False
            break
        if model is None:
            model, tok = load(cfg, name, out)
        new_tokens = cfg.litm_new_tokens if key.startswith("litm") else None
        evaluate.evaluate_resumable(model, tok, examples, path, max_new_tokens=new_tokens, progress=False,
                                    meta={"model": name, "eval": key, "target_len": cfg.target_len,
                                          "scorer": "tasks.score (RULER families: string_match_all)",
                                          "max_new_tokens": new_tokens})
    return all_done


def retrieval_heads(cfg: ExtendConfig, name: str, out: pathlib.Path, budget: TimeBudget) -> bool:
    from creamviz import retrieval_heads as R

    path = out / "results" / name / "retrieval_heads.json"
    if path.is_file():
        return True
    if budget.left() < 120:
        return False
    model, tok = load(cfg, name, out)
    examples = R.retrieval_examples(tok, task="passkey_chat", length=cfg.heads_length or cfg.target_len,
                                    depths=cfg.heads_depths, seeds=cfg.heads_seeds)
    scores = R.retrieval_scores(model, tok, examples, label=name)
    masking = R.masking_experiment(model, tok, examples, scores, ks=cfg.heads_ks, n_random=cfg.heads_random, seed=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**scores.record(), "masking": masking.record()}, indent=1))
    return True


def summarize(out: pathlib.Path) -> dict:
    """Accuracy per model and evaluation (k / n), from the records written so far."""
    summary = {}
    for folder in sorted((out / "results").glob("*")):
        rows = {}
        for f in sorted(folder.glob("*.json")):
            data = json.loads(f.read_text())
            if "records" in data:
                recs = data["records"]
                rows[f.stem] = {"correct": sum(bool(r["correct"]) for r in recs), "n": len(recs),
                                "max_new_tokens": data["meta"].get("max_new_tokens")}
            else:
                rows[f.stem] = {"top5": data["top10"][:5], "accuracy": data["accuracy"],
                                "masking_top": data["masking"]["top"], "masking_random_mean": data["masking"]["random_mean"]}
        summary[folder.name] = rows
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def run(cfg: ExtendConfig, out: pathlib.Path, parts=("train", "eval", "heads"), max_minutes: float = 8.5) -> int:
    import torch

    torch.manual_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "extend_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    budget = TimeBudget(max_minutes)
    done = True
    if "train" in parts:
        for method in METHODS:
            done = train_method(cfg, method, out, budget) and done
            if not done:
                return OUT_OF_TIME
    if "eval" in parts:
        from creamviz import models

        sets = eval_examples(cfg, models.load_tokenizer(cfg.model))
    for name in ("base", *METHODS):
        if "eval" in parts:
            done = evaluate_model(cfg, name, out, budget, sets) and done
        if "heads" in parts:
            done = retrieval_heads(cfg, name, out, budget) and done
        summarize(out)
        if not done:
            return OUT_OF_TIME
    return DONE if done else OUT_OF_TIME


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/extend_smollm2"))
    p.add_argument("--parts", nargs="+", default=["train", "eval", "heads"], choices=["train", "eval", "heads"])
    p.add_argument("--max-minutes", type=float, default=8.5, help="this call's time budget (it stops, resumable)")
    p.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (the test suite)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--lora-r", type=int, default=None)
    p.add_argument("--lora-embed-norms", action="store_true")
    args = p.parse_args(argv)
    cfg = smoke_config() if args.cpu_smoke else ExtendConfig()
    if args.steps is not None:
        cfg.steps = args.steps
    if args.lora_r is not None:
        cfg.lora_r = args.lora_r
    cfg.lora_embed_norms = cfg.lora_embed_norms or args.lora_embed_norms
    status = run(cfg, args.out, parts=tuple(args.parts), max_minutes=args.max_minutes)
    print(json.dumps(summarize(args.out), indent=1))
    print("done" if status == DONE else "time budget reached: run the same command again to continue")
    return status


if __name__ == "__main__":
    sys.exit(main())
