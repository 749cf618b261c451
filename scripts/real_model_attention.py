"""What position ids do to SmolLM2's retrieval heads before any training, over several prompts and draws.

For key-value prompts of ``--length`` tokens (gold pair in the middle, seeds ``--seeds``), the
question's attention mass on the gold pair for the heads that retrieve it, with

- contiguous ids on the base model and on the model with YaRN (factor 4, L = 4 N = 32768);
- CREAM ids (truncated-normal middle, k = 4 L / T) and PoSE ids spread over [0, L), with YaRN,
  ``--draws`` draws each.

The heads are the ``--top`` heads of a separate selection prompt (seed 100, as in notebook 06).
Writes a JSON file with every value; ``--summary`` prints means over prompts and draws.

    OMP_NUM_THREADS=1 python scripts/real_model_attention.py --out docs/real_model/attention_ids.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs/real_model/attention_ids.json"))
    p.add_argument("--length", type=int, default=3072)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--factor", type=int, default=4)
    p.add_argument("--summary", action="store_true")
    args = p.parse_args(argv)
    if args.summary:
        data = json.loads(args.out.read_text())
        print(f"heads {data['heads']}; {len(data['rows'])} maps")
        for variant in dict.fromkeys(r["variant"] for r in data["rows"]):
            rows = [r for r in data["rows"] if r["variant"] == variant]
            mass = np.array([r["gold_mass"] for r in rows])  # (maps, heads)
            mid = np.array([r["middle_third"] for r in rows])
            print(f"{variant:>18}: {len(rows)} maps; gold-pair mass per head (mean ± sd) "
                  + ", ".join(f"{m:.3f}±{s:.3f}" for m, s in zip(mass.mean(0), mass.std(0), strict=True))
                  + f"; middle third (mean of these heads) {mid.mean():.3f}")
        return 0

    import torch

    from creamviz import tasks
    from creamviz.attention import attention_maps, prompt_spans
    from creamviz.models import load_model, load_tokenizer
    from creamviz.samplers import CreamSampler, PoseSampler, sampler_defaults

    torch.set_num_threads(1)
    name = "smollm2-135m"
    tok, base = load_tokenizer(name), load_model(name)
    yarn = load_model(name, rope="yarn", factor=args.factor)
    L = args.factor * base.config.max_position_embeddings

    sel = tasks.kv_uuid(tok, args.length, depth=0.5, seed=100)
    sel_spans = prompt_spans(sel, tok)
    sel_maps = attention_maps(base, sel.prompt_ids, pool=1, query_len=sel_spans.query_len)
    heads = sel_maps.top_heads(*sel_spans.needle, k=args.top)
    layers = sorted({layer for layer, _ in heads})
    rows = []
    for seed in args.seeds:
        ex = tasks.kv_uuid(tok, args.length, depth=0.5, seed=seed)
        spans = prompt_spans(ex, tok)
        T = ex.n_tokens
        k = min(sampler_defaults("cream", T, L)["k"], T // 8)  # the declared 4·L/N, capped to keep a middle
        variants = [("contiguous", base, None, None), ("contiguous + YaRN", yarn, None, None)]
        variants += [("cream + YaRN", yarn, CreamSampler(T, L, k=k, middle="truncnorm").position_ids(1, seed=d)[0], d)
                     for d in range(args.draws)]
        variants += [("pose + YaRN", yarn, PoseSampler(T, L).position_ids(1, seed=d)[0], d)
                     for d in range(args.draws)]
        for variant, model, pos, draw in variants:
            maps = attention_maps(model, ex.prompt_ids, position_ids=pos, pool=1, query_len=spans.query_len,
                                  layers=layers)
            gold = maps.mass_on(*spans.needle)
            idx = [(maps.layers.index(la), h) for la, h in heads]
            q_gold = int(maps.position_ids[spans.question_start]) - int(maps.position_ids[spans.needle_start])
            rows.append({"seed": seed, "variant": variant, "draw": draw, "n_tokens": T,
                         "gold_mass": [float(gold[i, h]) for i, h in idx],
                         "middle_third": float(np.mean([maps.thirds[i, h, 1] for i, h in idx])),
                         "question_to_gold_distance": q_gold})
            print(variant, seed, draw, np.round(rows[-1]["gold_mass"], 3), q_gold, flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"model": name, "length": args.length, "factor": args.factor,
                                            "heads": heads, "selection_seed": 100, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
