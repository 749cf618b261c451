"""Step time and peak memory of LoRA vs full fine-tuning at the same N (one process per run).

Each run is a fresh ``python`` process (so its peak resident memory, ``ru_maxrss``, is its own)
calling ``creamviz.training.train`` for ``--steps`` optimizer steps of ``--batch`` windows of N
tokens; the step time is the median over the steps after the first (warm-up). Runs alternate
full / LoRA ``--repeats`` times, so background load hits both alike. Writes a JSON file.

    OMP_NUM_THREADS=1 python scripts/lora_step_cost.py --model smollm2-135m --train-len 256 \\
        --out docs/real_model/lora_vs_full_cpu.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

ONE_RUN = r'''
import json, resource, sys, time
import torch
from transformers import TrainerCallback
from creamviz.training import TrainConfig, train
args = json.loads(sys.argv[1])
torch.set_num_threads(1)
times = []
class Clock(TrainerCallback):
    def on_step_begin(self, *a, **k): self.t = time.perf_counter()
    def on_step_end(self, *a, **k): times.append(time.perf_counter() - self.t)
res = train(TrainConfig(**args), callbacks=[Clock()])
print(json.dumps({"step_s": times, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "losses": [r["loss"] for r in res.loss_log]}))
'''


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--train-len", type=int, default=256, help="N, tokens per window")
    p.add_argument("--target-len", type=int, default=32768, help="L")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=pathlib.Path, required=True)
    args = p.parse_args(argv)
    import numpy as np

    rows = []
    for rep in range(args.repeats):
        for mode in ("full", "lora"):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = dict(model=args.model, train_len=args.train_len, target_len=args.target_len, rope="yarn",
                           steps=args.steps, batch_size=args.batch, warmup_steps=0, lr=1e-4, seed=0,
                           save_every=10_000, progress=False, record_positions=False, out=f"{tmp}/run",
                           lora_r=args.lora_r if mode == "lora" else None)
                done = subprocess.run([sys.executable, "-c", ONE_RUN, json.dumps(cfg)], capture_output=True, text=True,
                                      timeout=1800)
                if done.returncode:
                    print(done.stderr[-3000:], file=sys.stderr)
                    return 1
                r = json.loads(done.stdout.strip().splitlines()[-1])
                r.update(mode=mode, repeat=rep, median_step_s=float(np.median(r["step_s"][1:])))
                rows.append(r)
                print(f"{mode} #{rep}: median step {r['median_step_s']:.2f} s, peak RSS {r['peak_rss_mib']:.0f} MiB",
                      flush=True)
    summary = {m: {"median_step_s": float(np.median([r["median_step_s"] for r in rows if r["mode"] == m])),
                   "peak_rss_mib": float(np.median([r["peak_rss_mib"] for r in rows if r["mode"] == m]))}
               for m in ("full", "lora")}
    out = {"model": args.model, "N": args.train_len, "L": args.target_len, "batch": args.batch, "steps": args.steps,
           "lora_r": args.lora_r, "threads": 1, "device": "cpu", "rows": rows, "summary": summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
