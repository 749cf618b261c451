"""Time and peak memory of creamviz.attention.attention_maps vs eager ``output_attentions``.

Each measurement runs in a fresh Python subprocess, so its peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) belongs to that one computation alone (it includes
the ~0.4-0.5 GB of importing torch + transformers, reported separately as "before").

    .venv/bin/python benchmarks/bench_attention.py [--lengths 2048 4096 8192 16384] [--eager 2048 4096]

Model: the shipped tiny base checkpoint if present (creamviz.models.BASE_CHECKPOINT), else a random
``tiny_llama()`` (same shapes: 4 layers x 4 heads, head_dim 32). Exits 1 if the peak RSS at
T = 16384 reaches the 2 GB bound.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

BOUND_T = 16384  # the length the memory bound is stated for
BOUND_MB = 2048  # peak RSS bound at BOUND_T, in MiB

CHILD = r"""
import json, resource, sys, time
import torch
from creamviz import models
mode, T, pool = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(int(sys.argv[4]))
if models.BASE_CHECKPOINT.is_dir() and any(models.BASE_CHECKPOINT.glob("*.safetensors")):
    model, source = models.load_model(models.BASE_CHECKPOINT), "base checkpoint"
else:
    model, source = models.tiny_llama(), "random tiny_llama()"
model.eval()
ids = torch.randint(3, 259, (T,), generator=torch.Generator().manual_seed(0))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
if mode == "chunked":
    from creamviz.attention import attention_maps
    maps = attention_maps(model, ids, pool=pool)
    shape = list(maps.pooled.shape)
else:
    from creamviz.attention import pool_boundaries, pool_matrix
    model.set_attn_implementation("eager")
    with torch.no_grad():
        out = model(input_ids=ids[None], attention_mask=torch.ones(1, T, dtype=torch.long),
                    output_attentions=True, use_cache=False, logits_to_keep=1)
    att = torch.stack(out.attentions)[:, 0]  # (layers, heads, T, T)
    shape = list(att.shape)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"mode": mode, "T": T, "seconds": seconds, "before_mb": before, "peak_mb": peak,
                  "shape": shape, "model": source}))
"""


def measure(mode: str, T: int, pool: int, threads: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(T), str(pool), str(threads)],
                         capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if out.returncode != 0:
        return {"mode": mode, "T": T, "error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[2048, 4096, 8192, 16384])
    parser.add_argument("--eager", type=int, nargs="*", default=[2048, 4096],
                        help="lengths for the eager output_attentions baseline (it needs layers x heads x T^2)")
    parser.add_argument("--pool", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    print(f"{'method':<26}{'T':>7}{'time s':>9}{'before MB':>11}{'peak MB':>10}  shape")
    rows = {}
    for mode, lengths in (("chunked", args.lengths), ("eager", args.eager)):
        for T in lengths:
            r = measure(mode, T, args.pool, args.threads)
            rows[mode, T] = r
            name = "attention_maps (pooled)" if mode == "chunked" else "eager output_attentions"
            if "error" in r:
                print(f"{name:<26}{T:>7}  failed: {r['error']}")
                continue
            print(f"{name:<26}{T:>7}{r['seconds']:>9.2f}{r['before_mb']:>11.0f}{r['peak_mb']:>10.0f}  {r['shape']}")
    print(f"model: {next((r['model'] for r in rows.values() if 'model' in r), '?')}; "
          f"pool = {args.pool}; torch threads = {args.threads}")
    for T in sorted(set(args.lengths) & set(args.eager)):
        c, e = rows["chunked", T], rows["eager", T]
        if "error" not in c and "error" not in e:
            print(f"T = {T}: eager / chunked  time x{e['seconds'] / c['seconds']:.2f}, "
                  f"peak RSS x{e['peak_mb'] / c['peak_mb']:.2f} "
                  f"(above import: {e['peak_mb'] - e['before_mb']:.0f} vs {c['peak_mb'] - c['before_mb']:.0f} MB)")
    big = max(args.lengths)
    layers_heads = 4 * 4  # the tiny model
    print(f"eager at T = {big} would hold layers x heads x T^2 float32 = "
          f"{layers_heads * big * big * 4 / 2**30:.1f} GiB of attentions alone (not run)")
    if BOUND_T in args.lengths:
        r = rows["chunked", BOUND_T]
        ok = "error" not in r and r["peak_mb"] < BOUND_MB
        print(f"bound: peak RSS at T = {BOUND_T} < {BOUND_MB} MB: {'met' if ok else 'MISSED'}")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
