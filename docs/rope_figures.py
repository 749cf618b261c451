"""Render the RoPE figures of docs/rope.md: one per scaling, Llama-2-7B's rotary geometry, N = 4096, L = 32768.

    BROWSER_PATH=/usr/bin/chromium .venv/bin/python docs/rope_figures.py [--out docs/img] [--samples 2000]

Config only (head_dim 128, rope_theta 1e4, N = 4096): no weights are read. Writes
``rope_<scaling>.png`` and prints the numbers docs/rope.md quotes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from creamviz import figures as F
from creamviz import rope

SCALINGS = (None, "linear", "dynamic", "yarn", "llama3")  # longrope needs searched per-pair factors


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "img")
    parser.add_argument("--samples", type=int, default=2000, help="samples per method (seed 0)")
    parser.add_argument("--model", default="llama2-7b")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from creamviz.samplers import make_sampler

    methods = ("cream", "pose", "randpos", "contiguous")
    frequencies = {m: rope.sampler_distance_frequency(make_sampler(m, train_len=4096, target_len=32768),
                                                      args.samples, seed=0) for m in methods}
    for scaling in SCALINGS:  # the trained distances do not depend on the scaling: sampled once
        spec = rope.rope_spectrum(args.model, scaling, None if scaling is None else 8, target_len=32768)
        view = rope.rope_overview(spec, methods, n_samples=args.samples, frequencies=frequencies)
        name = scaling or "default"
        F.fig_rope_summary(spec, view.decay, view.coverages, familiar="cream").write_image(
            args.out / f"rope_{name}.png", width=1200, height=760, scale=1)
        regions = dict(zip(*np.unique(spec.regions, return_counts=True), strict=True))
        pre = view.coverages["pre-training"].covered_fraction
        print(f"{name:>8}: attention factor {spec.attention_factor:.4f}; regions {regions}; "
              f"scale min {spec.scale.min():.3g} max {spec.scale.max():.3g}; "
              f"pairs < 1 turn in L: {(spec.rotations(32768) < 1).sum()}; "
              f"pre-training sees all needed angles in {(pre == 1).sum()}/{len(pre)} pairs "
              f"(min {pre.min():.2f}); contiguous min {view.coverages['contiguous'].covered_fraction.min():.2f}")
        slow = spec.rotations(32768) < 1
        print("          slow pairs, middle distances [L/3, 2L/3), exercise rate: " + ", ".join(
            f"{m} {view.coverages[m].rate_in(slow, 32768 // 3, 2 * 32768 // 3):.3f}" for m in methods))


if __name__ == "__main__":
    main()
