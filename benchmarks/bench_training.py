"""Training and evaluation speed of the tiny model: collator share of a step, steps/s, prompts/s.

    .venv/bin/python benchmarks/bench_training.py [--steps 8] [--batch-size 8] [--repeats 100]

Measured in this one run, on the shipped tiny base (N = 256, L = 2048, linear RoPE, factor 8):

1. ``PositionCollator`` time per batch (``batch`` examples of N tokens from the pre-training
   mixture, CREAM and PoSE ids): median of ``repeats`` calls;
2. one training step of ``creamviz.training.train`` (``transformers.Trainer``: data, collator,
   forward, backward, AdamW): median interval between consecutive ``on_step_end`` events (the
   first step, which pays one-off set-up, is left out), and steps/s over the whole run;
3. the collator's share of one step — target < 1% (exit status 1 if missed);
4. evaluation throughput, greedy ``model.generate`` on the fixed key-value sets: prompts/s at
   L = 2048 and at L = 256, and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from creamviz import evaluate, models  # noqa: E402
from creamviz.data import MixtureDataset  # noqa: E402
from creamviz.samplers import make_sampler  # noqa: E402
from creamviz.training import PositionCollator, TrainConfig, train  # noqa: E402

TARGET_SHARE = 0.01  # collator time / step time must stay below 1 %
N, L = 256, 2048  # the tiny base's window and the target length


class StepClock(TrainerCallback):
    """Wall-clock time of every ``on_step_end`` (one per optimizer step)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.ends = [time.perf_counter()]

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


def time_collator(sampler_name: str, batch: list[dict], repeats: int) -> float:
    """Median seconds of one collator call on ``batch``."""
    tok = models.load_tokenizer("tiny")
    collator = PositionCollator(make_sampler(sampler_name, train_len=N, target_len=L), tok, seed=0)
    collator(batch)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        collator(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_training(steps: int, batch_size: int) -> dict:
    clock = StepClock()
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):  # Trainer's log dicts
        result = train(TrainConfig(sampler="cream", target_len=L, steps=steps, batch_size=batch_size,
                                   warmup_steps=0, data="mix", seed=0, progress=False, save_every=10_000,
                                   record_positions=False, out=out), callbacks=[clock])
    intervals = [b - a for a, b in zip(clock.ends[1:-1], clock.ends[2:], strict=True)]  # steps 2..S
    return {"step_s": statistics.median(intervals), "first_step_s": clock.ends[1] - clock.ends[0],
            "steps_per_s": result.steps_done / result.wall_time_s, "wall_s": result.wall_time_s,
            "final_loss": result.loss_log[-1]["loss"]}


def time_eval(model, tok, name: str, limit: int) -> tuple[float, int]:
    start = time.perf_counter()
    curve = evaluate.evaluate_eval_set(model, tok, name, limit=limit)
    seconds = time.perf_counter() - start
    n = int(curve.n.sum())
    return n / seconds, n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="training steps timed (>= 3)")
    parser.add_argument("--batch-size", type=int, default=8, help="N-token windows per step")
    parser.add_argument("--repeats", type=int, default=100, help="collator calls timed per sampler")
    parser.add_argument("--eval-limit", type=int, default=2, help="prompts per depth at L = 2048 (x2 at 256)")
    args = parser.parse_args(argv)
    if args.steps < 3:
        parser.error("--steps must be >= 3 (the first step is left out of the median)")
    print(f"tiny base N = {N} -> L = {L}, batch {args.batch_size} x {N} tokens, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    tok = models.load_tokenizer("tiny")
    data = MixtureDataset(tok, N, args.batch_size, seed=0)
    start = time.perf_counter()
    batch = [data[i] for i in range(args.batch_size)]
    data_s = time.perf_counter() - start
    collator_s = {s: time_collator(s, batch, args.repeats) for s in ("cream", "pose")}
    run = time_training(args.steps, args.batch_size)

    print(f"\n{'quantity':<44}{'value':>14}")
    for s, t in collator_s.items():
        print(f"{'collator, ' + s + ' (ms / batch)':<44}{t * 1e3:>14.3f}")
    print(f"{'mixture data, 1 batch (ms)':<44}{data_s * 1e3:>14.1f}")
    print(f"{'training step, median (s)':<44}{run['step_s']:>14.3f}")
    print(f"{'first step incl. set-up (s)':<44}{run['first_step_s']:>14.3f}")
    print(f"{'steps / s over the run':<44}{run['steps_per_s']:>14.3f}")
    print(f"{'steps / s from the median step':<44}{1 / run['step_s']:>14.3f}")

    model = models.load_model("tiny", rope="linear", factor=L / N)
    rate_long, n_long = time_eval(model, tok, f"kv_L{L}", args.eval_limit)
    rate_short, n_short = time_eval(model, tok, f"kv_L{N}", 2 * args.eval_limit)
    print(f"{f'eval kv L = {L} (prompts / s, {n_long} prompts)':<44}{rate_long:>14.2f}")
    print(f"{f'eval kv L = {N} (prompts / s, {n_short} prompts)':<44}{rate_short:>14.2f}")

    worst = max(collator_s.values())
    share = worst / run["step_s"]
    print("\nratios (same run):")
    for s, t in collator_s.items():
        print(f"  collator {s} / training step      {t / run['step_s']:8.3%}")
    print(f"  mixture data / training step      {data_s / run['step_s']:8.3%}  (inside the step, not the collator)")
    print(f"  eval prompts/s  L={N} : L={L}     {rate_short / rate_long:8.2f}x")
    ok = share < TARGET_SHARE
    print(f"\ncollator share {share:.3%} of a step: {'OK' if ok else 'MISSED'} (target < {TARGET_SHARE:.0%})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
