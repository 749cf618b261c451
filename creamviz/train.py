"""``creamviz train``: fine-tune a model with a position sampler (see :func:`creamviz.training.train`).

Examples::

    creamviz train --sampler cream --rope linear --target-len 2048 --steps 200 --out runs/cream
    creamviz train --out runs/cream --resume           # continue after an interruption
    accelerate launch --num_processes 2 --cpu -m creamviz.train --steps 20 --out runs/ddp
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from creamviz.samplers import MIDDLE_MODES
from creamviz.training import ROPE_CHOICES, TOKEN_MODES, TrainConfig

# sampler parameters exposed as flags: flag dest -> (type, help); only those given are passed on
SAMPLER_FLAGS = {
    "k": (int, "CREAM: head/tail length of the continuity branch (default 4 L / N)"),
    "mu": (float, "CREAM: mean of the Gaussian over rand_factor (default 1 + L / N)"),
    "sigma": (float, "CREAM: scale of that Gaussian (default 3)"),
    "p_continuity": (float, "CREAM: probability of the continuity branch (default 0.5)"),
    "middle": (str, "CREAM: middle placement (default reference)"),
    "branch_block": (int, "CREAM: samples sharing one branch draw (default 1)"),
}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except the None of sampler flags (their help names the sampler's default)."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="creamviz train", description=__doc__.split("\n\n")[0],
                                formatter_class=_Formatter)
    p.add_argument("--model", default=d.model, help="'tiny' (the shipped base) or a local HF model directory")
    p.add_argument("--sampler", default=d.sampler, choices=["cream", "pose", "randpos", "contiguous"],
                   help="position sampler")
    for name, (typ, text) in SAMPLER_FLAGS.items():
        extra = {"choices": MIDDLE_MODES} if name == "middle" else {}
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None, help=text, **extra)
    p.add_argument("--tokens", default=d.tokens, choices=TOKEN_MODES,
                   help="contiguous N-token windows, or tokens at the sampled offsets of L-token documents")
    p.add_argument("--rope", default=d.rope, choices=ROPE_CHOICES, help="RoPE interpolation")
    p.add_argument("--factor", type=float, default=None, help="RoPE factor (default L / N)")
    p.add_argument("--train-len", type=int, default=None,
                   help="N, tokens per window (default: the model's pre-trained window)")
    p.add_argument("--target-len", type=int, default=d.target_len, help="L, target context length")
    p.add_argument("--steps", type=int, default=d.steps, help="optimizer steps")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    p.add_argument("--lr-schedule", default=d.lr_schedule, help="transformers scheduler name")
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="windows per device")
    p.add_argument("--grad-accum", type=int, default=d.grad_accum, help="micro-batches per step")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--save-every", type=int, default=d.save_every, help="checkpoint every K steps")
    p.add_argument("--keep-checkpoints", type=int, default=d.keep_checkpoints)
    p.add_argument("--out", default=d.out, help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--data", default=None,
                   help="'mix' (corpus text + synthetic retrieval tasks, the pre-training mixture) or a "
                        "UTF-8 text file (default: the corpus in data/corpus/, train split)")
    p.add_argument("--attn", default=d.attn, choices=["sdpa", "eager"])
    p.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPU)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return p


def config_from_args(ns: argparse.Namespace) -> TrainConfig:
    """A :class:`TrainConfig` from parsed flags (sampler flags left unset are not passed)."""
    params = {k: getattr(ns, k) for k in SAMPLER_FLAGS if getattr(ns, k) is not None}
    names = {f.name for f in fields(TrainConfig)}
    kwargs = {k: v for k, v in vars(ns).items() if k in names and k not in SAMPLER_FLAGS}
    return TrainConfig(**kwargs, sampler_params=params, progress=not ns.no_progress)


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    from creamviz.training import train

    try:
        result = train(config_from_args(ns))
    except ValueError as err:
        print(f"creamviz train: error: {err}", file=sys.stderr)
        return 2
    from accelerate import PartialState

    if PartialState().is_main_process:
        last = result.loss_log[-1]["loss"] if result.loss_log else float("nan")
        where = result.final_model if result.final_model else f"{result.out_dir} (stopped early)"
        print(f"creamviz train: {result.steps_done} steps in {result.wall_time_s:.1f} s, "
              f"last loss {last:.4f}; model: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
