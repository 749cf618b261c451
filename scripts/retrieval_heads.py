"""Retrieval heads (Wu et al. 2024) of models before and after fine-tuning, and head masking.

For each model (``NAME=PATH``; PATH a model directory, "tiny", a named model, or a LoRA run's
``final/`` adapter with ``--base``), on ``task`` prompts of ``--length`` tokens (depths x seeds):
the retrieval score of every head, the greedy answers' exact match, and the masking experiment
(top-k heads vs k random other heads, ``--random`` seeded draws). Writes one JSON file.

    OMP_NUM_THREADS=1 python scripts/retrieval_heads.py --task kv --length 1024 --rope yarn --factor 4 \\
        base=tiny cream=runs/cream/final pose=runs/pose/final --out docs/real_model/retrieval_tiny.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="NAME=PATH, e.g. base=tiny cream=runs/cream/final")
    p.add_argument("--task", default="kv")
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--depths", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.9])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--random", type=int, default=10, help="random draws of k heads per k")
    p.add_argument("--rope", default=None, help="RoPE interpolation of the base model (for base=tiny etc.)")
    p.add_argument("--factor", type=float, default=None)
    p.add_argument("--base", default=None, help="base model of adapter directories")
    p.add_argument("--out", type=pathlib.Path, required=True)
    args = p.parse_args(argv)

    import torch

    from creamviz import lora, models
    from creamviz import retrieval_heads as R

    torch.set_num_threads(1)
    results = {"task": args.task, "length": args.length, "depths": args.depths, "seeds": args.seeds,
               "ks": args.ks, "n_random": args.random, "models": {}}
    for spec in args.models:
        name, _, path = spec.partition("=")
        t0 = time.perf_counter()
        if lora.is_adapter_dir(path):
            model = models.load_model(args.base, rope=args.rope, factor=args.factor, adapter=path, merge=True)
            tok = models.load_tokenizer(args.base)
        elif path in ("tiny", *models.NAMED_MODELS):
            model, tok = models.load_model(path, rope=args.rope, factor=args.factor), models.load_tokenizer(path)
        else:  # a fine-tuned checkpoint carries its own RoPE config
            model, tok = models.load_model(path), models.load_tokenizer(path)
        examples = R.retrieval_examples(tok, task=args.task, length=args.length, depths=args.depths, seeds=args.seeds)
        scores = R.retrieval_scores(model, tok, examples, label=name)
        masking = R.masking_experiment(model, tok, examples, scores, ks=args.ks, n_random=args.random, seed=0)
        results["models"][name] = {"path": path, **scores.record(), "per_prompt_correct": scores.correct.tolist(),
                                   "masking": masking.record(), "seconds": round(time.perf_counter() - t0, 1)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))  # written as each model finishes
        print(f"{name}: exact {scores.correct.mean():.2f}, top {results['models'][name]['top10'][:4]}, "
              f"mask top {masking.top.tolist()} vs random {masking.random.mean(1).round(2).tolist()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
