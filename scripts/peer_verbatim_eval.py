"""SmolLM2-135M-Instruct in the peers' verbatim task modes, on CPU (resumable, one record per prompt).

- RULER verbatim NIAH tasks (``niah_single_1`` ... ``niah_multiquery``) at L = 2048 (and 4096 with
  ``--ruler-lengths 2048 4096``): RULER's prompts, 128-token budget, ``string_match_all``.
- Lost in the Middle key-value retrieval with 75 pairs, the gold record at 0 / 18 / 37 / 54 / 74, the
  same key asked: budget 100 (LitM) — and, from the same greedy run cut at 50 new tokens, CREAM's
  budget 50; scorer ``substring_nocase``.

Rounds go seed by seed over every task, so a run stopped at any time has every task at about the same
n. Each finished prompt is appended to the JSONL file ``--out`` at once; a rerun skips what is there.

    OMP_NUM_THREADS=1 python scripts/peer_verbatim_eval.py --out docs/real_model/peer_verbatim_smollm2.jsonl \
        --seeds 10 --deadline 2026-12-07T02:20
    python scripts/peer_verbatim_eval.py --out docs/real_model/peer_verbatim_smollm2.jsonl --summary
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pathlib
import time

from creamviz import tasks
from creamviz.validation import check_int

SEED0 = 50_000  # seeds of this measurement (the shipped real-model sets use 30 000 - 34 096)
LITM_PAIRS = 75


def plan(ruler_lengths, n_seeds):
    """(key, build) pairs in round order: for each seed, every RULER niah task at every length, then
    LitM at the five gold indices."""
    for i in range(n_seeds):
        for L in ruler_lengths:
            for t in tasks.RULER_NIAH_TASKS:
                yield (t, L, SEED0 + i, None), ("ruler", t, L, SEED0 + i)
        for d in tasks.LITM_DEPTHS:
            yield ("litm_kv", LITM_PAIRS, SEED0 + i, d), ("litm", d, SEED0 + i)


def build(tok, spec):
    if spec[0] == "ruler":
        _, t, L, seed = spec
        return tasks.ruler_example(tok, t, L, seed=seed)
    _, d, seed = spec
    return tasks.litm_kv(tok, n_pairs=LITM_PAIRS, depth=d, seed=seed)


def run(args) -> None:
    import torch

    from creamviz.models import load_model, load_tokenizer

    torch.set_num_threads(1)
    deadline = dt.datetime.fromisoformat(args.deadline).replace(tzinfo=dt.UTC) if args.deadline else None
    out = pathlib.Path(args.out)
    done = set()
    if out.is_file():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["task"], r["length_key"], r["seed"], r["target_depth"]))
    tok = load_tokenizer("smollm2-135m")
    model = load_model("smollm2-135m").eval()
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    for key, spec in plan(args.ruler_lengths, args.seeds):
        if key in done:
            continue
        if deadline and dt.datetime.now(dt.UTC) >= deadline:
            print("deadline reached", flush=True)
            return
        ex = build(tok, spec)
        budget = tasks.task_spec(ex.task).max_new_tokens
        t0 = time.time()
        ids = torch.tensor([ex.prompt_ids])
        with torch.no_grad():
            gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=budget,
                                 do_sample=False, pad_token_id=pad)[0, ids.shape[1]:].tolist()
        text = tok.decode(gen, skip_special_tokens=True)
        spec_ = tasks.task_spec(ex.task)
        rec = {"task": ex.task, "mode": spec_.mode, "scorer": spec_.scorer, "budget": budget,
               "length_key": key[1], "length": ex.length, "n_tokens": ex.n_tokens, "seed": ex.seed,
               "target_depth": key[3], "depth": ex.depth, "gold_index": ex.gold_index, "n_items": ex.n_items,
               "answer": ex.answer, "generated": text, "generated_ids": gen,
               "score": tasks.score_value(ex.task, text, ex.answer), "seconds": round(time.time() - t0, 1)}
        if ex.task == "litm_kv":  # CREAM's budget: the same greedy run cut at 50 new tokens
            text50 = tok.decode(gen[:tasks.PEER_BUDGETS["cream_litm"]], skip_special_tokens=True)
            rec.update(generated_50=text50, score_50=tasks.score_value(ex.task, text50, ex.answer))
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"{ex.task} L={ex.length} seed={ex.seed} depth={key[3]} score={rec['score']:.2f} "
              f"({rec['seconds']} s)", flush=True)


def summary(path: pathlib.Path) -> dict:
    """Per (task, length, budget): mean score x 100 (RULER's convention), n, and a Wilson 95 %
    interval of the fully-correct share (string_match_all's partial credit aside)."""
    from creamviz.evaluate import wilson_interval

    recs = [json.loads(line) for line in path.read_text().splitlines()]
    groups: dict = {}
    for r in recs:
        groups.setdefault((r["task"], r["length_key"], r["budget"], r["scorer"]), []).append(r["score"])
        if "score_50" in r:
            groups.setdefault((r["task"], r["length_key"], 50, r["scorer"]), []).append(r["score_50"])
        if r["task"] == "litm_kv":
            groups.setdefault((f"litm_kv@{r['target_depth']}", r["length_key"], r["budget"], r["scorer"]),
                              []).append(r["score"])
            groups.setdefault((f"litm_kv@{r['target_depth']}", r["length_key"], 50, r["scorer"]),
                              []).append(r["score_50"])
    tokens: dict = {}  # prompt lengths per task and size
    for r in recs:
        tokens.setdefault((r["task"], r["length_key"]), []).append(r["n_tokens"])
    out = {}
    for (task, L, budget, scorer), s in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        k = sum(x == 1.0 for x in s)
        lo, hi = wilson_interval(k, len(s))
        size = f"pairs={L}" if task.startswith("litm_kv") else f"L={L}"
        n_tok = tokens[(task.split("@")[0], L)]
        out[f"{task} {size} budget={budget}"] = {
            "task": task, "size": size, "budget": budget, "scorer": scorer, "n": len(s),
            "score_x100": round(100 * sum(s) / len(s), 2), "all_correct": k, "wilson95": [round(lo, 3), round(hi, 3)],
            "prompt_tokens": [min(n_tok), max(n_tok)]}
    return out


def table(summ: dict) -> str:
    """The summary as the Markdown table of docs/evaluation.md (RULER tasks, then LitM over all depths)."""
    rows = ["| task (mode) | L / size | prompt tokens | scorer | budget | n | score | all correct [Wilson 95 %] |",
            "|---|---|---|---|---|---|---|---|"]
    order = {t: i for i, t in enumerate(tasks.RULER_NIAH_TASKS)}
    ruler = sorted((v for v in summ.values() if v["task"] in order),
                   key=lambda v: (int(v["size"].removeprefix("L=")), order[v["task"]]))
    litm = sorted((v for v in summ.values() if v["task"] == "litm_kv"), key=lambda v: -v["budget"])
    for v in ruler + litm:
        is_litm = v["task"] == "litm_kv"
        name = "litm_kv (LitM verbatim), all depths" if is_litm else f"{v['task']} (RULER verbatim)"
        size = f"{LITM_PAIRS} pairs" if is_litm else f"{int(v['size'].removeprefix('L=')):,}"
        budget = f"{v['budget']} ({'LitM' if v['budget'] == 100 else 'CREAM'})" if is_litm else str(v["budget"])
        lo, hi = (round(100 * x) for x in v["wilson95"])
        rows.append(f"| {name} | {size} | {v['prompt_tokens'][0]:,}–{v['prompt_tokens'][1]:,} | {v['scorer']} | "
                    f"{budget} | {v['n']} | {v['score_x100']:.1f} | {v['all_correct']}/{v['n']} [{lo}, {hi}] |")
    return "\n".join(rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--ruler-lengths", type=int, nargs="+", default=[2048])
    p.add_argument("--deadline", default=None, help="UTC, ISO format: stop starting prompts after it")
    p.add_argument("--summary", action="store_true", help="print the summary (JSON) of --out and stop")
    p.add_argument("--table", action="store_true", help="print the summary as docs/evaluation.md's table and stop")
    args = p.parse_args(argv)
    check_int("--seeds", args.seeds, 1, 1000)
    if args.summary or args.table:
        summ = summary(pathlib.Path(args.out))
        print(table(summ) if args.table else json.dumps(summ, indent=1))
        return
    run(args)


if __name__ == "__main__":
    main()
