"""Key-value accuracy of the real model (SmolLM2-135M-Instruct) by gold depth, on CPU, in the mode
"LitM template, fill the budget" (``tasks.kv_uuid``: LitM's prompt, pairs filling L, a different key per
depth; LitM's own design is ``tasks.litm_kv``, run by ``scripts/peer_verbatim_eval.py``).

Resumable background measurement: run it, stop it any time, run it again — finished contexts are
kept in the JSON file and skipped. Seeds go in rounds of ``--block`` per length, alternating the
lengths, so the depth curves at every length grow together; the first 10 seeds of each length are
exactly the fixed set ``creamviz/resources/eval/real/kv_uuid_L{L}.jsonl``.

    OMP_NUM_THREADS=1 python scripts/real_model_eval.py --out docs/real_model/lim_smollm2.json &
    python scripts/real_model_eval.py --out docs/real_model/lim_smollm2.json --summary

Greedy decoding, up to 100 new tokens for key-value retrieval (the Lost in the Middle setting), one
prefill per JSON object (the five depths of a seed share it). Scorers: ``substring_nocase`` (value in
the answer, case-insensitive; LitM's) with budget 100; passkey / NIAH: ``first_number_exact``, budgets
10 / 12. Every record stores its mode, scorer and budget.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from creamviz import evaluate, tasks

SEED_OFFSET = {task: tasks.REAL_EVAL_SEED + 1000 * i for i, task in enumerate(tasks.CHAT_TASKS)}
MAX_NEW_TOKENS = {"kv_uuid": 100, "passkey_chat": 10, "niah_chat": 12}


def summary(path: pathlib.Path) -> dict:
    """Per task and length: accuracy by depth with Wilson 95% intervals, and a two-sided Fisher exact
    test of the ends (depths 0 and 1 pooled) against the middle (depth 0.5)."""
    from scipy.stats import fisher_exact

    data = json.loads(path.read_text())
    out = {}
    groups: dict = {}
    for r in data["records"]:
        groups.setdefault((r["task"], int(r["length"])), []).append(r)
    for (task, L), recs in sorted(groups.items()):
        curve = evaluate.depth_curve(recs)
        rows = evaluate.depth_table(curve)
        by_depth = {row["depth"]: row for row in rows}
        test = None
        if {0.0, 0.5, 1.0} <= set(by_depth):
            ends_k = by_depth[0.0]["correct"] + by_depth[1.0]["correct"]
            ends_n = by_depth[0.0]["n"] + by_depth[1.0]["n"]
            mid_k, mid_n = by_depth[0.5]["correct"], by_depth[0.5]["n"]
            res = fisher_exact([[ends_k, ends_n - ends_k], [mid_k, mid_n - mid_k]])
            test = {"ends_correct": ends_k, "ends_n": ends_n, "middle_correct": mid_k, "middle_n": mid_n,
                    "fisher_p_two_sided": float(res.pvalue)}
        seeds = sorted({int(r["seed"]) for r in recs})
        out[f"{task}_L{L}"] = {"rows": rows, "ends_vs_middle": test, "n_contexts": len(seeds),
                               "n_items": sorted({int(r["n_items"]) for r in recs}),
                               "prompt_tokens": [int(np.min([r["n_tokens"] for r in recs])),
                                                 int(np.max([r["n_tokens"] for r in recs]))]}
    return out


UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def answer_kinds(records: list[dict], tokenizer) -> dict:
    """What the wrong key-value answers are, per length: the gold value, another value of the object,
    a key of the object, only the asked key (e.g. "the value of <key> is <key>"), a UUID not in the
    object, no UUID; and how many answers hit the ``max_new_tokens`` cap (no end of turn)."""
    import re

    out: dict = {}
    for r in records:
        if r["task"] != "kv_uuid":
            continue
        ex = tasks.kv_uuid(tokenizer, int(r["length"]), depth=r["target_depth"], seed=int(r["seed"]))
        pairs = ex.meta["pairs"]
        asked = pairs[ex.gold_index][0]
        values, keys = {v for _, v in pairs}, {k for k, _ in pairs}
        found = [u for u in re.findall(UUID, r["generated"].lower()) if u != asked]
        if r["correct"]:
            kind = "gold value"
        elif any(u in values for u in found):
            kind = "another value of the object"
        elif any(u in keys for u in found):
            kind = "another key of the object"
        elif found:
            kind = "a UUID not in the object"
        elif asked in r["generated"].lower():
            kind = "only the asked key"
        else:
            kind = "no UUID"
        c = out.setdefault(f"kv_uuid_L{r['length']}", {})
        c[kind] = c.get(kind, 0) + 1
        capped = len(tokenizer(r["generated"], add_special_tokens=False)["input_ids"]) >= MAX_NEW_TOKENS["kv_uuid"] - 2
        c["hit the token cap"] = c.get("hit the token cap", 0) + int(capped)
    return out


def print_summary(s: dict) -> None:
    for name, v in s.items():
        print(f"{name}: {v['n_contexts']} contexts, items {v['n_items']}, prompt tokens {v['prompt_tokens']}")
        for row in v["rows"]:
            print(f"  depth {row['depth']:>4.2f}: {row['correct']:>3}/{row['n']:<3} = {row['accuracy']:.3f} "
                  f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]")
        if v.get("answer_kinds"):
            print(f"  answers: {v['answer_kinds']}")
        if v["ends_vs_middle"]:
            t = v["ends_vs_middle"]
            print(f"  ends {t['ends_correct']}/{t['ends_n']} vs middle {t['middle_correct']}/{t['middle_n']}: "
                  f"Fisher p = {t['fisher_p_two_sided']:.3g}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs/real_model/lim_smollm2.json"))
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--tasks", nargs="+", default=["kv_uuid"], choices=tasks.CHAT_TASKS)
    p.add_argument("--lengths", nargs="+", type=int, default=list(tasks.REAL_EVAL_LENGTHS))
    p.add_argument("--seeds", type=int, default=40, help="contexts per length (each asked at 5 depths)")
    p.add_argument("--block", type=int, default=5, help="seeds per length per round")
    p.add_argument("--summary", action="store_true", help="print the summary of --out and exit")
    args = p.parse_args(argv)
    if args.summary:
        from creamviz.models import load_tokenizer

        s = summary(args.out)
        kinds = answer_kinds(json.loads(args.out.read_text())["records"], load_tokenizer(args.model))
        for name, v in s.items():
            v["answer_kinds"] = kinds.get(name)
        print_summary(s)
        args.out.with_name(args.out.stem + "_summary.json").write_text(json.dumps(s, indent=1) + "\n")
        return 0
    import torch

    from creamviz.models import load_model, load_tokenizer

    torch.set_num_threads(1)
    tok, model = load_tokenizer(args.model), load_model(args.model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for task in args.tasks:
        for start in range(0, args.seeds, args.block):
            for L in args.lengths:
                n = min(args.block, args.seeds - start)
                ex = tasks.depth_sweep(task, tok, L, tasks.EVAL_DEPTHS, n_per_depth=n,
                                       seed=SEED_OFFSET[task] + L + start)
                ex.sort(key=lambda e: e.seed)  # context by context
                evaluate.evaluate_resumable(
                    model, tok, ex, args.out, max_new_tokens=MAX_NEW_TOKENS[task], progress=False,
                    meta={"model": args.model, "depths": list(tasks.EVAL_DEPTHS), "threads": 1,
                          "decoding": "greedy", "max_new_tokens_by_task": MAX_NEW_TOKENS})
                print(f"{task} L={L} seeds {start}..{start + n - 1} done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
