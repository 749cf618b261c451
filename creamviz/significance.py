"""Statistics of the study's per-prompt records: CIs, paired contrasts, permutation tests, power.

The data of one arm is a 0/1 matrix ``(k seeds, n prompts)``: whether fine-tuning seed s answered
prompt j correctly; every arm answers the same prompts, and seed s of every arm saw the same
training rows, so two arms are compared on the matrix of paired differences.

- :func:`two_level_ci`   mean accuracy with a 95 % CI from a two-level bootstrap: seeds are
  resampled with replacement (``scipy.stats.bootstrap``), then prompts within each resampled seed.
  The second level is drawn from its exact distribution: resampling n prompts with replacement
  from a seed whose accuracy is p gives a count ~ Binomial(n, p) (for paired differences in
  {-1, 0, 1}: counts ~ Multinomial(n, shares)), so no resampling loop is written here.
- :func:`paired_contrast`  difference A − B on the same prompts and seeds: the two-level CI of the
  mean difference and a permutation p-value (``scipy.stats.permutation_test``: sign flips of the
  per-seed paired differences, i.e. swapping the arm labels within a seed; exact for small k).
- :func:`variance_parts`   prompt (binomial) and training (seed) variance of per-seed accuracy.
- :func:`min_detectable_difference`  the difference a paired t-test on k seeds detects with the
  given power (noncentral t, ``scipy.stats.nct``).
- :func:`summarize`  the study's summary (``creamviz/resources/study/summary.json``) from the record table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import optimize, stats

__all__ = ["MIDDLE_DEPTHS", "two_level_ci", "paired_contrast", "variance_parts", "min_detectable_difference",
           "power_paired", "holm", "arm_matrix", "summarize", "verdict", "print_summary"]

MIDDLE_DEPTHS = (0.25, 0.5, 0.75)  # gold-pair depths counted as "the middle" of the context


def _check_matrix(x, name: str = "matrix") -> np.ndarray:
    m = np.asarray(x, dtype=float)
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
        raise ValueError(f"{name} must be a 2-D (seeds, prompts) array with at least one of each, got shape {m.shape}")
    return m


def two_level_ci(matrix, *, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0) -> dict:
    """Mean of a ``(k seeds, n prompts)`` 0/1 matrix with a two-level percentile bootstrap CI.

    Returns ``{"mean", "ci95": [lo, hi], "se", "per_seed": [...]}`` (``se``: the bootstrap standard
    error). With one seed only the prompt level is resampled."""
    m = _check_matrix(matrix)
    if not np.isin(m, (0.0, 1.0)).all():
        raise ValueError("matrix must hold 0/1 outcomes")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} is out of range: valid is (0, 1)")
    k, n = m.shape
    per_seed = m.mean(axis=1)
    rng = np.random.default_rng(seed)

    def statistic(p, axis=-1):  # p: (..., k) resampled per-seed accuracies
        return (stats.binom.rvs(n, p, random_state=rng) / n).mean(axis=axis)

    if k == 1:  # prompt level only
        draws = statistic(np.broadcast_to(per_seed, (n_resamples, 1)))
        lo, hi = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
        se = float(draws.std(ddof=1))
    else:
        res = stats.bootstrap((per_seed,), statistic, vectorized=True, n_resamples=n_resamples,
                              confidence_level=confidence, method="percentile", random_state=rng)
        lo, hi = res.confidence_interval
        se = float(res.standard_error)
    return {"mean": float(per_seed.mean()), "ci95": [float(lo), float(hi)], "se": se,
            "per_seed": per_seed.tolist()}


def paired_contrast(a, b, *, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0) -> dict:
    """A − B for two ``(k seeds, n prompts)`` 0/1 matrices on the same seeds (rows) and prompts
    (columns): mean difference, two-level bootstrap CI, permutation p-value (two-sided).

    Returns ``{"diff", "ci95", "se", "p_value", "n_seeds", "n_prompts", "per_seed_diff"}``."""
    a, b = _check_matrix(a, "a"), _check_matrix(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same (seeds, prompts) shape, got {a.shape} and {b.shape}")
    if a.shape[0] < 2:
        raise ValueError(f"a paired contrast needs >= 2 seeds, got {a.shape[0]}")
    k, n = a.shape
    d = a - b
    q_minus, q_plus = (d < 0).mean(axis=1), (d > 0).mean(axis=1)  # per-seed shares of -1 / +1
    rng = np.random.default_rng(seed)

    def statistic(qm, qp, axis=-1):  # resampled seeds -> prompts resampled within each (multinomial)
        shares = np.stack([qm, 1.0 - qm - qp, qp], axis=-1).clip(0.0, 1.0)
        shares /= shares.sum(axis=-1, keepdims=True)
        counts = rng.multinomial(n, shares)  # (..., k, 3)
        return ((counts[..., 2] - counts[..., 0]) / n).mean(axis=axis)

    res = stats.bootstrap((q_minus, q_plus), statistic, paired=True, vectorized=True, n_resamples=n_resamples,
                          confidence_level=confidence, method="percentile", random_state=rng)
    per_a, per_b = a.mean(axis=1), b.mean(axis=1)
    perm = stats.permutation_test((per_a, per_b), lambda x, y, axis=-1: np.mean(x - y, axis=axis),
                                  permutation_type="samples", vectorized=True, n_resamples=n_resamples,
                                  alternative="two-sided", random_state=rng)
    lo, hi = res.confidence_interval
    return {"diff": float((per_a - per_b).mean()), "ci95": [float(lo), float(hi)],
            "se": float(res.standard_error), "p_value": float(perm.pvalue), "n_seeds": int(k),
            "n_prompts": int(n), "per_seed_diff": (per_a - per_b).tolist()}


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm–Bonferroni adjusted p-values (family-wise error), same keys."""
    names = sorted(p_values, key=lambda k: p_values[k])
    m, out, running = len(names), {}, 0.0
    for i, name in enumerate(names):
        running = max(running, min(1.0, (m - i) * p_values[name]))
        out[name] = running
    return out


def variance_parts(matrix) -> dict:
    """Split the variance of per-seed accuracy into the prompt part (binomial, mean p(1−p)/n) and
    the training part (seed variance minus the prompt part, floored at 0). SDs in accuracy units."""
    m = _check_matrix(matrix)
    k, n = m.shape
    p = m.mean(axis=1)
    total = float(p.var(ddof=1)) if k > 1 else float("nan")
    prompt = float(np.mean(p * (1 - p) / n))
    seed = max(0.0, total - prompt) if k > 1 else float("nan")
    return {"sd_total": float(np.sqrt(total)), "sd_prompt": float(np.sqrt(prompt)), "sd_seed": float(np.sqrt(seed)),
            "k": int(k), "n": int(n)}


def power_paired(diff: float, sd: float, k: int, *, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test on k per-seed differences of SD ``sd`` for a true mean
    difference ``diff`` (noncentral t)."""
    if k < 2 or sd <= 0:
        raise ValueError(f"need k >= 2 and sd > 0, got k={k}, sd={sd}")
    df, nc = k - 1, diff / (sd / np.sqrt(k))
    t = stats.t.ppf(1 - alpha / 2, df)
    lower = stats.nct.cdf(-t, df, nc)  # the far tail: can underflow to NaN for large nc
    return float(stats.nct.sf(t, df, nc) + (0.0 if np.isnan(lower) else lower))


def min_detectable_difference(sd: float, k: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean difference the two-sided paired t-test on k seeds detects with ``power``."""
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha}, power={power} must lie in (0, 1)")
    df = k - 1
    hi = 2 * (stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * sd / np.sqrt(k)  # power(hi) > power
    return float(optimize.brentq(lambda d: power_paired(d, sd, k, alpha=alpha) - power, 1e-12 * sd, hi))


# --------------------------------------------------------------------------- the record table
def arm_matrix(df, arm: str, *, task: str = "kv", depths: Sequence[float] | None = MIDDLE_DEPTHS,
               seeds: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, matrix) of one arm from the record table: rows = seeds (sorted, or ``seeds``), columns =
    prompts of ``task`` ("kv" or a RULER-style task) at ``depths`` (None: all), in (depth, prompt) order."""
    sel = df[(df["arm"] == arm) & (df["set"] == task)]
    if depths is not None:
        sel = sel[np.isclose(sel["depth"].to_numpy()[:, None], np.asarray(depths)[None, :]).any(axis=1)]
    table = sel.pivot_table(index="seed", columns=["depth", "prompt"], values="correct", aggfunc="first")
    if seeds is not None:
        table = table.loc[list(seeds)]
    if table.isna().any().any():
        raise ValueError(f"arm {arm!r}: some seeds lack some prompts of {task!r}")
    return table.index.to_numpy(), table.to_numpy(dtype=float)


def summarize(df, config: Mapping, *, reference: str = "cream", key_pair: tuple[str, str] = ("cream", "pose"),
              n_resamples: int = 10_000, seed: int = 0, arm_info: Mapping[str, Mapping] | None = None) -> dict:
    """The study's summary from its record table (see :func:`creamviz.study.load_records`)."""
    from creamviz.study import ARM_BY_NAME, BASE

    arms = [a for a in ARM_BY_NAME if a in set(df["arm"])]
    tasks_ = [t for t in dict.fromkeys(df["set"]) if t != "kv"]
    depths = sorted(set(df.loc[df["set"] == "kv", "depth"]))
    out = {"config": dict(config), "arms": {}, "contrasts": {}}
    for i, arm in enumerate(arms):
        seeds, m = arm_matrix(df, arm)
        ci = two_level_ci(m, n_resamples=n_resamples, seed=seed + i)
        info = ARM_BY_NAME[arm]
        entry = {"params": {"sampler": info.sampler, **info.params}, "seeds": [int(s) for s in seeds],
                 "middle_acc": ci["per_seed"], "mean": ci["mean"], "ci95": ci["ci95"], "label": info.label,
                 "n_middle_prompts": int(m.shape[1]), "variance": variance_parts(m)}
        entry["by_depth"] = {}
        for d in depths:
            _, md = arm_matrix(df, arm, depths=[d])
            c = two_level_ci(md, n_resamples=max(1000, n_resamples // 5), seed=seed + i)
            entry["by_depth"][f"{d:g}"] = {"mean": c["mean"], "ci95": c["ci95"], "n_prompts": int(md.shape[1])}
        entry["tasks"] = {}
        for t in tasks_:
            _, mt = arm_matrix(df, arm, task=t, depths=None)
            c = two_level_ci(mt, n_resamples=max(1000, n_resamples // 5), seed=seed + i)
            entry["tasks"][t] = {"mean": c["mean"], "ci95": c["ci95"], "n_prompts": int(mt.shape[1])}
            if "partial" in df:  # RULER's partial credit: share of the required strings present
                part = df[(df["arm"] == arm) & (df["set"] == t)].groupby("seed")["partial"].mean()
                entry["tasks"][t]["partial_mean"] = float(part.mean())
                entry["tasks"][t]["partial_sd_seed"] = float(part.std(ddof=1)) if len(part) > 1 else 0.0
        out["arms"][arm] = entry
    if BASE in set(df["arm"]):
        base = df[df["arm"] == BASE]
        mid = base[(base["set"] == "kv") & np.isclose(base["depth"].to_numpy()[:, None],
                                                     np.asarray(MIDDLE_DEPTHS)[None, :]).any(axis=1)]
        out["base"] = {"middle_acc": float(mid["correct"].mean()),
                       "by_depth": {f"{d:g}": float(base[(base["set"] == "kv") & np.isclose(base["depth"], d)]
                                                    ["correct"].mean()) for d in depths},
                       "tasks": {t: float(base[base["set"] == t]["correct"].mean()) for t in tasks_}}
        if "partial" in df:
            out["base"]["tasks_partial"] = {t: float(base[base["set"] == t]["partial"].mean()) for t in tasks_}
    pairs = []
    if all(a in arms for a in key_pair):
        pairs.append((f"{key_pair[0]}-vs-{key_pair[1]}", key_pair[0], key_pair[1]))
    pairs += [(f"{a}-vs-{reference}", a, reference) for a in arms if a != reference and reference in arms
              and (a, reference) != tuple(reversed(key_pair))]
    for j, (name, a, b) in enumerate(pairs):
        common = sorted(set(out["arms"][a]["seeds"]) & set(out["arms"][b]["seeds"]))
        if len(common) < 2:
            continue
        _, ma = arm_matrix(df, a, seeds=common)
        _, mb = arm_matrix(df, b, seeds=common)
        c = paired_contrast(ma, mb, n_resamples=n_resamples, seed=seed + 100 + j)
        sd = float(np.std(c["per_seed_diff"], ddof=1))
        out["contrasts"][name] = {"diff": c["diff"], "ci95": c["ci95"], "p_value": c["p_value"], "arm": a,
                                  "reference": b, "n_seeds": c["n_seeds"], "n_prompts": c["n_prompts"],
                                  "sd_seed_diff": sd,
                                  "mdd80": min_detectable_difference(sd, c["n_seeds"]) if sd > 0 else 0.0}
    side = {k: v["p_value"] for k, v in out["contrasts"].items() if v["reference"] == reference
            and k != f"{key_pair[0]}-vs-{key_pair[1]}"}
    for name, p in holm(side).items():
        out["contrasts"][name]["p_holm"] = p
    out["verdict"] = verdict(out)
    return out


def verdict(summary: Mapping, pair: str = "cream-vs-pose", labels: Mapping[str, str] | None = None) -> str:
    """One sentence on the key contrast, read off its 95 % CI (excludes 0 or not) and p-value.
    ``labels`` renames the arms in the sentence (e.g. ``{"cream": "CREAM"}``)."""
    c = summary.get("contrasts", {}).get(pair)
    if c is None:
        return f"{pair}: not measured (both arms need >= 2 common seeds)."
    key_a, key_b = pair.split("-vs-")
    labels = labels or {}
    a, b = labels.get(key_a, key_a), labels.get(key_b, key_b)
    lo, hi = c["ci95"]
    arms = summary.get("arms", {})
    means = ""
    if key_a in arms and key_b in arms:
        means = f" ({arms[key_a]['mean'] * 100:.1f} % vs {arms[key_b]['mean'] * 100:.1f} %)"
    if lo > 0 or hi < 0:
        word = "higher" if lo > 0 else "lower"
        strength = f"the 95 % CI excludes 0: {a} is {word}"
    else:
        strength = "the 95 % CI includes 0: no clear difference"
    return (f"{a} − {b} in the middle of the context: {c['diff'] * 100:+.1f} points{means}, 95 % CI "
            f"[{lo * 100:+.1f}, {hi * 100:+.1f}], permutation p = {c['p_value']:.3g}, {c['n_seeds']} paired seeds x "
            f"{c['n_prompts']} prompts; {strength}.")


def print_summary(summary: Mapping) -> None:
    """The study's table on the terminal."""
    print(f"\n{'arm':<18} {'middle acc %':>12}  {'95% CI':>15}  seeds")
    for name, a in summary["arms"].items():
        print(f"{name:<18} {a['mean'] * 100:12.1f}  [{a['ci95'][0] * 100:5.1f}, {a['ci95'][1] * 100:5.1f}]  {len(a['seeds'])}")
    print(f"\n{'contrast':<28} {'diff':>7}  {'95% CI':>15}  {'p':>7}")
    for name, c in summary["contrasts"].items():
        print(f"{name:<28} {c['diff'] * 100:+7.1f}  [{c['ci95'][0] * 100:+5.1f}, {c['ci95'][1] * 100:+5.1f}]  {c['p_value']:7.4f}")
    print(summary.get("verdict", ""))
