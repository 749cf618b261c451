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
  mean difference and the exact sign-flip p-value (:func:`sign_flip_p`: all 2^k sign patterns of
  the per-seed paired differences, i.e. swapping the arm labels within a seed; counted by a
  meet-in-the-middle over two halves of the seeds, so exact up to k ≈ 40).
- :func:`variance_parts`   prompt (binomial) and training (seed) variance of per-seed accuracy.
- :func:`min_detectable_difference`  the difference a paired t-test on k seeds detects with the
  given power (noncentral t, ``scipy.stats.nct``).
- :func:`summarize`  the study's summary (``creamviz/resources/study/summary.json``) from the record table.

This module knows nothing of the study's arms: :func:`summarize` is given them (name -> params and
label), so it imports nothing from :mod:`creamviz.study`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import optimize, stats

__all__ = ["MIDDLE_DEPTHS", "two_level_ci", "paired_contrast", "sign_flip_p", "variance_parts",
           "min_detectable_difference", "power_paired", "holm", "arm_matrix", "middle_accuracy", "summarize",
           "verdict", "contrast_rows", "print_summary", "json_safe"]

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
    counts = d.sum(axis=1)  # (k,) per-seed paired differences in prompts: integers, so the test is exact
    lo, hi = res.confidence_interval
    return {"diff": float((per_a - per_b).mean()), "ci95": [float(lo), float(hi)],
            "se": float(res.standard_error), "p_value": sign_flip_p(counts), "n_seeds": int(k),
            "n_prompts": int(n), "per_seed_diff": (per_a - per_b).tolist()}


MAX_SIGN_FLIP_SEEDS = 44  # 2 x 2^22 half-sums: exact counting stays under a few hundred MB


def sign_flip_p(diffs) -> float:
    """Exact two-sided p of the sign-flip test of per-seed paired differences ``diffs`` (integers,
    e.g. prompt counts): the share of the 2^k sign patterns whose sum is at least as far from 0 as
    the observed one. The 2^k sums are counted by splitting the seeds into two halves, listing each
    half's 2^(k/2) sums and counting pairs with a sorted search (meet in the middle)."""
    x = np.asarray(diffs)
    if x.ndim != 1 or x.size < 1 or not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise ValueError(f"diffs must be a 1-D array of finite numbers, got {x!r}")
    if not np.allclose(x, np.round(x)):
        raise ValueError("diffs must be integers (counts); scale them (e.g. by the number of prompts) first")
    if x.size > MAX_SIGN_FLIP_SEEDS:
        raise ValueError(f"len(diffs)={x.size} is out of range: valid is 1..{MAX_SIGN_FLIP_SEEDS}")
    x = np.abs(np.round(x).astype(np.int64))
    observed = int(abs(np.round(np.asarray(diffs)).astype(np.int64).sum()))

    def half_sums(v):  # all 2^len(v) signed sums
        sums = np.zeros(1, dtype=np.int64)
        for value in v:
            sums = np.concatenate([sums + value, sums - value])
        return sums

    left, right = half_sums(x[: x.size // 2]), np.sort(half_sums(x[x.size // 2:]))
    # pairs with left + right >= observed, plus pairs with left + right <= -observed
    upper = right.size - np.searchsorted(right, observed - left, side="left")
    lower = np.searchsorted(right, -observed - left, side="right")
    if observed == 0:  # every pattern is at least as far from 0
        return 1.0
    extreme = upper.sum() + lower.sum()
    return float(extreme / 2.0 ** x.size)


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm–Bonferroni adjusted p-values (family-wise error over the keys given), same keys."""
    bad = {k: v for k, v in p_values.items() if not (np.isfinite(v) and 0.0 <= v <= 1.0)}
    if bad:
        raise ValueError(f"p_values={bad} out of range: valid are finite numbers in [0, 1]")
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


def middle_accuracy(df, *, task: str = "kv") -> dict[tuple[str, int], float]:
    """Middle accuracy (gold pair at :data:`MIDDLE_DEPTHS`) of every run in the record table:
    ``{(arm, seed): share correct}`` (seed -1 for the untuned base)."""
    sel = df[(df["set"] == task) & np.isclose(df["depth"].to_numpy()[:, None], np.asarray(MIDDLE_DEPTHS)[None, :]).any(axis=1)]
    return {(str(a), int(s)): float(v) for (a, s), v in sel.groupby(["arm", "seed"])["correct"].mean().items()}


def json_safe(obj):
    """``obj`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(obj, Mapping):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    return obj


def summarize(df, config: Mapping, arms: Mapping[str, Mapping], *, base: str = "base", reference: str = "cream",
              key_pair: tuple[str, str] = ("cream", "pose"), holm_family: Sequence[str] | None = None,
              n_resamples: int = 10_000, seed: int = 0) -> dict:
    """The study's summary from its record table (see :func:`creamviz.study.load_records`).

    ``arms``: arm name -> ``{"params", "label"}`` in table order (arms absent from ``df`` are skipped);
    ``base``: the untuned base's arm name. Contrasts: ``key_pair`` (A − B) and every other arm −
    ``reference``, each on the seeds both arms have; ``p_holm``: Holm over the family
    ``holm_family`` (contrast names; default: the arm − ``reference`` contrasts, the key pair outside
    it), stated in the result. The result has
    no NaN (a quantity that needs more seeds is None)."""
    present = set(df["arm"])
    names = [a for a in arms if a in present]
    tasks_ = [t for t in dict.fromkeys(df["set"]) if t != "kv"]
    depths = sorted(set(df.loc[df["set"] == "kv", "depth"]))
    out = {"config": dict(config), "arms": {}, "contrasts": {}}
    for i, arm in enumerate(names):
        seeds, m = arm_matrix(df, arm)
        ci = two_level_ci(m, n_resamples=n_resamples, seed=seed + i)
        entry = {"params": dict(arms[arm]["params"]), "seeds": [int(s) for s in seeds],
                 "middle_acc": ci["per_seed"], "mean": ci["mean"], "ci95": ci["ci95"], "label": arms[arm]["label"],
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
    if base in present:
        rows = df[df["arm"] == base]
        out["base"] = {"middle_acc": middle_accuracy(rows)[(base, -1)],
                       "by_depth": {f"{d:g}": float(rows[(rows["set"] == "kv") & np.isclose(rows["depth"], d)]
                                                    ["correct"].mean()) for d in depths},
                       "tasks": {t: float(rows[rows["set"] == t]["correct"].mean()) for t in tasks_}}
        if "partial" in df:
            out["base"]["tasks_partial"] = {t: float(rows[rows["set"] == t]["partial"].mean()) for t in tasks_}
    key_name = f"{key_pair[0]}-vs-{key_pair[1]}"
    pairs = [(key_name, *key_pair)] if all(a in names for a in key_pair) else []
    pairs += [(f"{a}-vs-{reference}", a, reference) for a in names if a != reference and reference in names
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
    family = [k for k, v in out["contrasts"].items() if v["reference"] == reference and k != key_name]
    if holm_family is not None:
        family = [k for k in holm_family if k in out["contrasts"]]
    out["holm_family"] = family
    for name, p in holm({k: out["contrasts"][k]["p_value"] for k in family}).items():
        out["contrasts"][name]["p_holm"] = p
    out["verdict"] = verdict(out, f"{key_pair[0]}-vs-{key_pair[1]}", {a: arms[a]["label"] for a in names})
    return json_safe(out)


def _points(x: float, signed: bool = True) -> str:
    """``x`` (a share) in points with one decimal; a value that rounds to zero prints as 0.0, unsigned."""
    v = round(float(x) * 100, 1)
    if v == 0:
        return "0.0"
    return (f"{v:+.1f}" if signed else f"{v:.1f}").replace("-", "−")


def verdict(summary: Mapping, pair: str = "cream-vs-pose", labels: Mapping[str, str] | None = None) -> str:
    """One sentence on a contrast, read off its 95 % CI and p-value: whether the CI excludes 0, and
    how far the CI reaches on each side (so a CI that barely touches 0 reads as borderline, not as
    "no difference"). ``labels`` renames the arms (e.g. ``{"cream": "CREAM"}``)."""
    c = summary.get("contrasts", {}).get(pair)
    key_a, key_b = pair.split("-vs-")
    labels = labels or {}
    a, b = labels.get(key_a, key_a), labels.get(key_b, key_b)
    if c is None:
        return f"{a} − {b}: not measured (both arms need >= 2 common seeds)."
    lo, hi = c.get("ci95") or (None, None)
    arms = summary.get("arms", {})
    means = ""
    if key_a in arms and key_b in arms:
        means = f" ({_points(arms[key_a]['mean'], False)} % vs {_points(arms[key_b]['mean'], False)} %)"
    if not all(isinstance(x, float | int) and np.isfinite(x) for x in (c.get("diff"), lo, hi, c.get("p_value"))):
        return f"{a} − {b}: not estimable from these records (a difference, CI bound or p-value is missing)."
    lo_s, hi_s = _points(lo), _points(hi)
    if lo > 0 or hi < 0:
        word = "higher" if lo > 0 else "lower"
        strength = f"the 95 % CI excludes 0: {a} is {word}"
    elif min(abs(lo), abs(hi)) < 0.005:
        side = "above" if c["diff"] > 0 else "below"
        strength = (f"the 95 % CI reaches 0 only at its edge: a borderline difference, mostly {side} 0, "
                    "not established at this number of seeds")
    else:
        strength = (f"the 95 % CI includes 0 and spans {lo_s} to {hi_s} points: the data are compatible "
                    "with no difference and with differences of that size either way")
    return (f"{a} − {b} in the middle of the context: {_points(c['diff'])} points{means}, 95 % CI "
            f"[{lo_s}, {hi_s}], sign-flip p = {c['p_value']:.2g}, {c['n_seeds']} paired seeds × "
            f"{c['n_prompts']} prompts; {strength}.")


def contrast_rows(summary: Mapping, labels: Mapping[str, str] | None = None) -> list[dict]:
    """The contrasts as table rows for people: display names, differences and CI bounds in points
    (one decimal), p-values to two significant digits."""
    labels = labels or {}
    rows = []
    for c in summary.get("contrasts", {}).values():
        a, b = c["arm"], c["reference"]
        lo, hi = c["ci95"]
        rows.append({"contrast": f"{labels.get(a, a)} − {labels.get(b, b)}", "difference (points)": round(c["diff"] * 100, 1),
                     "95 % CI": f"[{_points(lo)}, {_points(hi)}]", "p": float(f"{c['p_value']:.2g}"),
                     "p (Holm)": float(f"{c['p_holm']:.2g}") if c.get("p_holm") is not None else None,
                     "paired seeds": c["n_seeds"],
                     "MDD80 (points)": round(c["mdd80"] * 100, 1) if c.get("mdd80") is not None else None})
    return rows


def print_summary(summary: Mapping) -> None:
    """The study's table on the terminal."""
    print(f"\n{'arm':<18} {'middle acc %':>12}  {'95% CI':>15}  seeds")
    for name, a in summary["arms"].items():
        print(f"{name:<18} {a['mean'] * 100:12.1f}  [{a['ci95'][0] * 100:5.1f}, {a['ci95'][1] * 100:5.1f}]  {len(a['seeds'])}")
    print(f"\n{'contrast':<28} {'diff':>7}  {'95% CI':>15}  {'p':>7}")
    for name, c in summary["contrasts"].items():
        print(f"{name:<28} {c['diff'] * 100:+7.1f}  [{c['ci95'][0] * 100:+5.1f}, {c['ci95'][1] * 100:+5.1f}]  {c['p_value']:7.4f}")
    print(summary.get("verdict", ""))
