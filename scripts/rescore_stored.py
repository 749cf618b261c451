"""Re-score stored generations under the peers' own metrics (no model is run).

1. The study's predictions (``creamviz/resources/study/records.csv.gz``: the tiny model, byte-scaled
   tasks, generated with the short budget "answer's byte tokens + 2") against the prompts they were
   made for — the eval sets as the study used them (``--sets-rev``, default the commit before the
   shipped sets were regenerated) — with
   - RULER's ``string_match_all`` (share of the required strings, lower-cased, x 100) and
   - creamviz's strict ``all_strings_exact`` (every string, case-sensitive; the study's ``correct``).
2. SmolLM2's Lost-in-the-Middle answers (``docs/real_model/lim_smollm2.json``, generated with 100 new
   tokens): the stored generation re-tokenized with SmolLM2's tokenizer and cut at 50 (CREAM's budget)
   and 100 (LitM's) tokens, scored with ``substring_nocase``.

    python scripts/rescore_stored.py --out docs/evaluation/rescored.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess

import numpy as np

from creamviz import tasks

STUDY_SETS = {"kv": "kv100_L2048", **{t: f"{t}_L2048" for t in tasks.RULER_TASKS}}
SETS_REV = "e2a57d9"  # the eval sets the study's predictions were made on


def set_answers(name: str, rev: str) -> list[str]:
    text = subprocess.run(["git", "show", f"{rev}:creamviz/resources/eval/{name}.jsonl"], check=True,
                          capture_output=True, text=True).stdout
    return [json.loads(line)["answer"] for line in text.splitlines()]


def study_budget(task: str, answers: list[str]) -> int:
    """The budget the study generated with: the longest answer's byte tokens + 2."""
    return max(len(a.encode()) for a in answers) + 2


def seed_ci(per_seed: np.ndarray) -> list[float]:
    """95 % t-interval of the mean over seeds (the per-seed means are the units)."""
    from scipy import stats

    if len(per_seed) < 2:
        return [float("nan"), float("nan")]
    half = stats.t.ppf(0.975, len(per_seed) - 1) * per_seed.std(ddof=1) / np.sqrt(len(per_seed))
    return [float(per_seed.mean() - half), float(per_seed.mean() + half)]


def rescore_study(path: pathlib.Path, rev: str) -> dict:
    import pandas as pd

    df = pd.read_csv(path, keep_default_na=False, dtype={"seed": str, "generated": str})
    out = {}
    for task, name in STUDY_SETS.items():
        answers = set_answers(name, rev)
        budget = study_budget(task, answers)
        sub = df[df["set"] == task]
        ans = [answers[p] for p in sub["prompt"]]
        gens = sub["generated"].tolist()
        ruler = np.array([tasks.string_match_all(g, tasks.required_strings(task, a)) for g, a in zip(gens, ans,
                                                                                                     strict=True)])
        strict = np.array([tasks.all_strings_exact(g, tasks.required_strings(task, a)) for g, a in zip(gens, ans,
                                                                                                      strict=True)])
        stored = sub["correct"].astype(int).to_numpy()
        sub = sub.assign(ruler=ruler, strict=strict)
        rows = {}
        for arm, g in sub.groupby("arm", sort=False):
            per_seed_r = g.groupby("seed")["ruler"].mean().to_numpy() * 100
            per_seed_s = g.groupby("seed")["strict"].mean().to_numpy() * 100
            rows[arm] = {"n_seeds": int(len(per_seed_r)), "n_prompts": int(len(g)),
                         "string_match_all_x100": float(per_seed_r.mean()),
                         "string_match_all_ci95": seed_ci(per_seed_r),
                         "all_strings_exact_x100": float(per_seed_s.mean()),
                         "all_strings_exact_ci95": seed_ci(per_seed_s)}
        out[task] = {"eval_set": name, "mode": tasks.TASK_SPECS[task].mode, "budget": budget,
                     "budget_rule": "longest answer's byte tokens + 2 (the study's generation budget)",
                     "stored_correct_equals_all_strings_exact": bool((stored == strict).all()),
                     "arms": rows}
    return out


def rescore_litm(path: pathlib.Path) -> dict:
    from creamviz.models import load_tokenizer

    tok = load_tokenizer("smollm2-135m")
    data = json.loads(path.read_text())
    out: dict = {}
    for r in data["records"]:
        ids = tok(r["generated"], add_special_tokens=False)["input_ids"]
        for budget in (tasks.PEER_BUDGETS["cream_litm"], tasks.PEER_BUDGETS["litm"]):
            text = tok.decode(ids[:budget], skip_special_tokens=True)
            ok = tasks.substring_nocase(text, r["answer"])
            key = f"{r['task']}_L{r['length']} budget={budget}"
            cell = out.setdefault(key, {}).setdefault(str(r["target_depth"]), [0, 0])
            cell[0] += int(ok)
            cell[1] += 1
        pos = r["generated"].lower().find(r["answer"].lower())
        if pos >= 0:  # the new token at which the value ends
            end = len(tok(r["generated"][:pos + len(r["answer"])], add_special_tokens=False)["input_ids"])
            out.setdefault("value_end_token", []).append(end)
    from creamviz.evaluate import wilson_interval

    table = {}
    for key, cells in out.items():
        if key == "value_end_token":
            continue
        table[key] = {d: {"correct": k, "n": n, "accuracy": k / n, "wilson95": list(wilson_interval(k, n))}
                      for d, (k, n) in sorted(cells.items())}
    ends = out.get("value_end_token", [])
    table["value_end_token"] = {"min": int(min(ends)), "max": int(max(ends)), "n": len(ends)} if ends else {}
    table["scorer"] = "substring_nocase"
    table["mode"] = tasks.TASK_SPECS["kv_uuid"].mode
    return table


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--sets-rev", default=SETS_REV)
    args = p.parse_args(argv)
    from creamviz.resources import resource_path

    res = {"study": rescore_study(resource_path("study", "records.csv.gz"), args.sets_rev),
           "lim_smollm2": rescore_litm(pathlib.Path("docs/real_model/lim_smollm2.json"))}
    pathlib.Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
