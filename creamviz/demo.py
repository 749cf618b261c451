"""`creamviz demo`: the whole story headless, written to ``DIR/report.html`` + ``DIR/results.json``.

Stages: how CREAM samples positions (and its peers); which relative distances each method trains
and the audit of Theorem B.1; the paper's main experiment in miniature (fine-tune the shipped tiny
base from N = 256 to L = 2048 with CREAM and PoSE over several seeds, evaluate them and the base,
look at their attention). Every number in the report is also in results.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from creamviz import coverage, segment_stats, theorem
from creamviz import figures as F
from creamviz.evaluate import niah_grid_from_records
from creamviz.experiment import ExperimentConfig, run_experiment
from creamviz.figures.style import display_name
from creamviz.report import Section, write_report
from creamviz.samplers import CreamSampler, PoseSampler, RandPosSampler, make_sampler
from creamviz.validation import option


@dataclass
class DemoConfig:
    out: Path = option(Path("demo_out"), "where report.html and results.json go")
    train_len: int = option(4096, "N for the sampling figures (the paper's Llama-2 window)", low=3)
    target_len: int = option(32768, "L for the sampling figures (factor 8)", low=4)
    n_samples: int = option(200_000, "samples behind every sampling statistic (the command line's default: "
                            "20,000 with --quick)", low=1)
    seed: int = option(0, "one seed for every draw of the demo", low=0)
    quick: bool = option(False, "smaller everything, for a < 3 minute run")
    experiment: ExperimentConfig | None = option(None, "None: ExperimentConfig(out=out) (or .quick)", cli=False)
    skip_experiment: bool = option(False, "sampling, coverage and theorem only (seconds, no torch runs)")


def sampling_section(cfg: DemoConfig) -> tuple[Section, dict]:
    """Where CREAM's head / middle / tail land, the middle's placement and the peers."""
    big_n, big_l, n = cfg.train_len, cfg.target_len, cfg.n_samples
    cream = CreamSampler(big_n, big_l)
    seg = cream.sample(n, seed=cfg.seed)
    pmf = {mode: CreamSampler(big_n, big_l, middle=mode).rand_factor_pmf() for mode in ("reference", "truncnorm")}
    usage = {name: segment_stats.position_usage(make_sampler(name, train_len=big_n, target_len=big_l).sample(n, seed=cfg.seed))
             for name in ("cream", "pose", "contiguous")}
    n_rand = max(1, min(n, 2_000_000 // big_n * 8))  # RandPos materialises ids: bound the memory
    usage["randpos"] = segment_stats.position_usage(RandPosSampler(big_n, big_l).position_ids(n_rand, seed=cfg.seed),
                                            target_len=big_l)
    placement = segment_stats.middle_placement(seg)
    pose = PoseSampler(big_n, big_l).sample(n, seed=cfg.seed)
    results = {
        "train_len": big_n, "target_len": big_l, "n_samples": n, "sampler": cream.params,
        "continuity_fraction": float((seg.branch == 0).mean()),
        "rand_factor_pmf": {m: {int(v): float(p) for v, p in zip(*pmf[m], strict=True)} for m in pmf},
        "mid_center_mean": float(((seg.mid_start + seg.mid_end) / 2).mean()),
        "mid_center_mean_pose": float(((pose.mid_start + pose.mid_end) / 2).mean()),
        "middle_third_usage": {name: float(u.fractions["all"][(u.centers >= big_l / 3) & (u.centers < 2 * big_l / 3)].mean())
                               for name, u in usage.items()},
    }
    section = Section(
        title="How CREAM samples positions",
        paragraphs=[
            f"A window of N = {big_n} tokens is given position ids inside [0, L) with L = {big_l:,} "
            f"(factor {big_l // big_n}). CREAM keeps a head [0, L_h) and a tail [L − L_t, L) and places a "
            "contiguous middle [P_s, P_e] with a Gaussian preference for the centre of the context. "
            f"Continuity branch: L_h = L_t = k = {cream.k}; relativity branch: L_h = L_t = ⌊N/3⌋ = {big_n // 3}.",
            "The official recipe draws an integer rand_factor from a clipped Gaussian on [2, 2·factor] and then "
            "P_e uniformly in a window that ends at rand_factor·N/2; in the continuity branch that window is "
            "narrow, so the middle's end clusters near multiples of N/2 (the spikes in the placement figure).",
        ],
        figures=[F.fig_strip(seg), F.fig_segment_density(segment_stats.segment_usage(seg)),
                 F.fig_middle_placement(placement, rand_factor_pmf=pmf), F.fig_position_usage(usage)],
        tables=[(["method", "mean use of the middle third of [0, L)"],
                 [[k, f"{v:.3f}"] for k, v in results["middle_third_usage"].items()])],
    )
    return section, results


def coverage_section(cfg: DemoConfig) -> tuple[Section, dict]:
    """Relative distances per method, coverage curves, and the Theorem B.1 audit."""
    big_n, big_l = cfg.train_len, cfg.target_len
    n = 2_000 if cfg.quick else 20_000
    samplers = {name: make_sampler(name, train_len=big_n, target_len=big_l) for name in ("cream", "pose", "contiguous")}
    segs = {name: s.sample(n, seed=cfg.seed) for name, s in samplers.items()}
    freqs = {name: coverage.distance_frequency(seg) for name, seg in segs.items()}
    randpos_ids = RandPosSampler(big_n, big_l).position_ids(4 if cfg.quick else 16, seed=cfg.seed)  # (n, N)
    freqs["randpos"] = coverage.distance_frequency(randpos_ids, big_l)
    centers = coverage.bin_mean(freqs["cream"], 512)[0]
    curves = {name: coverage.coverage_curve(seg[:2000]) for name, seg in segs.items()}
    curves["randpos"] = coverage.coverage_curve(randpos_ids, big_l)  # raw ids: FFT path, fewer samples
    spans = {name: coverage.span_size(seg) for name, seg in segs.items()}
    # RandPos has no segments: mean |D_r| = Σ_d P(d in D_r), the sum of its distance frequency
    spans["randpos"] = np.array([freqs["randpos"].sum()])
    max_n, max_l = (8, 30) if cfg.quick else (12, 48)
    summary = theorem.summarize_audits(theorem.audit_all(max_n, max_l))
    at_scale = {branch: theorem.max_span(big_n, big_l, edge, edge)[0] for branch, edge in
                (("continuity", CreamSampler(big_n, big_l).k), ("relativity", big_n // 3))}
    results = {
        "mean_span_size": {k: float(v.mean()) for k, v in spans.items()},
        "distances_never_trained": {k: int((v == 0).sum()) for k, v in freqs.items()},
        "coverage_after_2000": {k: float(v[-1]) for k, v in curves.items()},
        "theorem_sweep": {"max_train_len": max_n, "max_target_len": max_l, **summary},
        "max_span_at_scale": at_scale,
        "paper_constant_at_scale": {b: theorem.paper_value(big_n, big_l, e, e) for b, e in
                                    (("continuity", CreamSampler(big_n, big_l).k), ("relativity", big_n // 3))},
    }
    s = summary
    section = Section(
        title="Which relative distances are trained, and Theorem B.1",
        paragraphs=[
            "RoPE sees relative positions p[i] − p[j]. D_r is the set of them in one sample (0 included); its size "
            "|D_r| has a closed form as the union of six integer intervals, checked against brute force.",
            f"Theorem B.1 audit over every configuration with N ≤ {max_n}, L ≤ {max_l} ({s['configs']:,} configurations, "
            f"every placement brute-forced): the paper's constant max(L_h−1, P_e−P_s, L_t−1)+2N matched the true maximum "
            f"in {s['paper_value_matches']} of them (offsets {s['paper_offsets'][:6]}…); the true maximum equals "
            f"max(L_h, L_m, L_t)+2N−3 whenever L ≥ L* ({s['iff_holds_when_L_ge_Lstar']} of {s['configs_L_ge_Lstar']}), and the "
            f"reconstructed 'iff' holds exactly there ({s['iff_as_predicted']} of {s['configs']} as predicted by L ≥ L*).",
            f"At N = {big_n}, L = {big_l:,}: the largest |D_r| is {at_scale['continuity']:,} (continuity branch) and "
            f"{at_scale['relativity']:,} (relativity); the paper's constant gives "
            f"{results['paper_constant_at_scale']['continuity']:,} and {results['paper_constant_at_scale']['relativity']:,}.",
        ],
        figures=[F.fig_distance_frequency({k: coverage.bin_mean(v, 512)[1] for k, v in freqs.items()}, distances=centers),
                 F.fig_coverage_curves(curves), F.fig_region_map(theorem.region_map(16, 72))],
        tables=[(["method", "mean |D_r|", "distances never trained", "coverage of [0, L) after 2,000 samples"],
                 [[display_name(k), f"{results['mean_span_size'][k]:,.0f}", results["distances_never_trained"][k],
                   f"{results['coverage_after_2000'][k]:.3f}"
                   + (f" (after {len(curves[k])} samples)" if k == "randpos" else "")]
                  for k in freqs])],
    )
    return section, results


def rope_section(cfg: DemoConfig) -> tuple[Section, dict]:
    """The other half of CREAM: what the experiment's RoPE interpolation does to each rotary pair of
    the tiny base, and which angles each method's trained distances exercise (N = 256, L as run)."""
    from creamviz import rope

    exp = cfg.experiment or ExperimentConfig()
    scaling = None if exp.rope in (None, "none") else exp.rope
    base_n = rope.rope_spectrum(exp.base).train_len  # N: the base's pre-trained window
    spec = rope.rope_spectrum(exp.base, scaling, None if scaling is None else exp.target_len / base_n,
                              target_len=exp.target_len)
    big_n, big_l = spec.train_len, spec.target_len
    methods = tuple(dict.fromkeys((*exp.methods, "randpos", "contiguous")))
    n = 2_000 if cfg.quick else 20_000
    view = rope.rope_overview(spec, methods, n_samples=n, seed=cfg.seed, n_bins=64, n_distance_bins=128)
    slow = spec.rotations(big_l) < 1  # pairs turning less than once within L: each distance its own angle
    middle = {m: view.coverages[m].rate_in(slow, big_l // 3, 2 * big_l // 3) for m in methods} if slow.any() else {}
    regions = {str(k): int(v) for k, v in zip(*np.unique(spec.regions, return_counts=True), strict=True)}
    results = {
        "model": exp.base, "scaling": spec.scaling, "factor": spec.factor, "train_len": big_n, "target_len": big_l,
        "attention_factor": spec.attention_factor, "regions": regions, "samples": view.n_samples,
        "slow_pairs": int(slow.sum()),
        "needed_angles_exercised_min": {m: float(c.covered_fraction.min()) for m, c in view.coverages.items()},
        "slow_pairs_middle_rate": middle,
    }
    section = Section(
        title="The other half: RoPE interpolation and the angles the trained distances exercise",
        paragraphs=[
            f"The experiment interpolates the tiny base's RoPE with {spec.scaling} ×{spec.factor:g} (θ = "
            f"{spec.rope_theta:g}, d = {spec.rotary_dim}) from N = {big_n} to L = {big_l:,}, as transformers computes "
            f"it: pairs kept / partly interpolated / interpolated: {regions}; attention factor "
            f"{spec.attention_factor:.3f}.",
            "A length-L input shows pair i the angles r·θ'_i for every distance r < L. A (pair, angle) cell is "
            "exercised when some trained distance lands in it; its exercise rate is how often per sample. Fast pairs "
            "see every angle from every method; the slow pairs map each distance to its own angle, so a method's "
            "gaps in distance become gaps in angle there.",
            f"Slow pairs (fewer than one turn within L: {int(slow.sum())} of {len(slow)}), middle distances "
            f"[L/3, 2L/3): exercise rate " + ", ".join(f"{m} {v:.3f}" for m, v in middle.items()) +
            f" ({n:,} samples per method, RandPos {view.n_samples.get('randpos')}, seed {cfg.seed}).",
        ],
        figures=[F.fig_rope_summary(spec, view.decay, view.coverages, familiar=methods[0]),
                 F.fig_distance_dimension({m: view.coverages[m] for m in methods})],
        tables=[(["method", "needed angles exercised (worst pair)", "slow pairs, middle distances: exercise rate"],
                 [[m, f"{results['needed_angles_exercised_min'][m]:.3f}",
                   f"{middle[m]:.3f}" if m in middle else "—"] for m in ("pre-training", *methods)])],
    )
    return section, results


def experiment_section(cfg: DemoConfig) -> tuple[Section, dict]:
    """Fine-tune CREAM and PoSE, evaluate them and the base (the paper's Figure 1 in miniature)."""
    exp_cfg = cfg.experiment or (ExperimentConfig.quick(out=cfg.out) if cfg.quick else ExperimentConfig(out=cfg.out))
    result = run_experiment(exp_cfg)
    summary = result.summary()
    middle = summary["middle_accuracy"]
    verdict = result.verdict()
    window = 256
    niah_by_method = {method: niah_grid_from_records([r for m in result.group(method) for r in result.niah[m].raw])
                      for method in ("base", *exp_cfg.methods)}
    first = {m: result.ppl[m] for m in result.models if m == "base" or m.endswith(f"-s{exp_cfg.seeds[0]}")}
    figures = [F.fig_accuracy_by_depth(result.kv_by_method(),
                                       title=f"Key-value retrieval by depth of the gold pair (L = {exp_cfg.target_len:,})")]
    figures += [F.fig_niah_heatmap(g, window=window, title=f"Needle in a haystack: {name}") for name, g in niah_by_method.items()]
    figures.append(F.fig_ppl_by_position(first, window=window))
    if result.attention:
        figures += [F.fig_depth_profiles(result.attention), F.fig_attention_difference(result.attention, reference="base")]
    rows = [[method, f"{v['mean'] * 100:.1f}", f"{v['std'] * 100:.1f}", ", ".join(f"{x * 100:.0f}" for x in v["per_seed"]),
             f"{np.mean([result.kv[m].mean_accuracy for m in result.group(method)]) * 100:.1f}"] for method, v in middle.items()]
    section = Section(
        title="CREAM vs PoSE after a short fine-tune (the paper's Figure 1 in miniature)",
        paragraphs=[
            f"Base: the shipped tiny Llama (N = {window}). Each method fine-tunes it to L = {exp_cfg.target_len:,} for "
            f"{exp_cfg.steps} steps (batch {exp_cfg.batch_size} × N, lr {exp_cfg.lr}, {exp_cfg.rope} RoPE interpolation, "
            f"the pre-training mix of text and retrieval tasks), seeds {list(exp_cfg.seeds)}; the base with the same "
            "interpolation and no fine-tuning is the floor. Evaluation uses the fixed sets in creamviz/resources/eval/: "
            f"{exp_cfg.kv_per_depth} key-value prompts per gold depth at L, the NIAH grid, perplexity by position.",
            "Keys and values are 4-character hex strings (the paper's UUIDs are too long for a byte-level model "
            "with a 2K context); the structure of the task is the same.",
        ],
        notes=[verdict],
        tables=[(["model", f"middle accuracy % (depths 25–75%; {next(iter(result.kv.values())).label})",
                  "± std over seeds", "per seed", "mean over all depths %"], rows)],
        figures=figures,
    )
    return section, {**summary, "verdict": verdict}


def study_section(cfg: DemoConfig) -> tuple[Section, dict]:
    """The shipped sampler-parameter study (``creamviz/resources/study/summary.json``, made by ``creamviz study``)."""
    from creamviz.study import shipped_summary

    summary = shipped_summary()
    if summary is None:
        return Section(title="The sampler-parameter study", paragraphs=["No study summary shipped."]), {}
    c = summary["config"]
    from creamviz.study import results_table, ruler_table

    table, ruler = results_table(summary), ruler_table(summary)
    section = Section(
        title="What the knobs do: the sampler-parameter study (measured, shipped in creamviz/resources/study/)",
        paragraphs=[
            f"Ten arms fine-tune the tiny base from N = {c.get('train_len', 256)} to L = {c['target_len']:,} ({c['rope']}, "
            f"{c['steps']} steps, lr {c['lr']}, batch {c['batch_size']}, data {c['data']}) over 20 seeds each (CREAM and "
            "PoSE: 30), seed s giving every arm the same training rows; every model answers the same 900 prompts. "
            "Middle accuracy: gold pair at depths 25–75 % (300 prompts per model). CIs: two-level bootstrap (seeds, then "
            "prompts); p: exact sign-flip test of the per-seed paired differences; p (Holm): Holm over the eight "
            "arm − CREAM reference contrasts (chosen after the design, not pre-registered). Design, stopping rule "
            "and the replication on fresh seeds: docs/study.md. "
            "Regenerate with `creamviz study --out DIR --seeds 20 --key-seeds 30`.",
        ],
        notes=[summary.get("verdict", "")],
        tables=[(list(t[0]), [list(r.values()) for r in t]) for t in (table, ruler) if t],
        figures=[F.fig_study_forest(summary), F.fig_study_contrasts(summary), F.fig_study_depth(summary)],
    )
    return section, {"verdict": summary.get("verdict"), "source": "creamviz/resources/study/summary.json"}


def perplexity_section(cfg: DemoConfig) -> tuple[Section, dict]:
    """Sliding-window perplexity against evaluation length (N ... L and 2L) for the base, CREAM and PoSE
    (the first seed's fine-tuned runs of the experiment stage, read back from ``cfg.out / runs``)."""
    from creamviz.evaluate import PPL_STRIDE, perplexity_by_length
    from creamviz.models import load_model, load_tokenizer

    title = "Perplexity by evaluation length (sliding window)"
    exp_cfg = cfg.experiment or (ExperimentConfig.quick(out=cfg.out) if cfg.quick else ExperimentConfig(out=cfg.out))
    from creamviz import study

    scfg = exp_cfg.study_config()  # the runs are the study runner's (experiment stage)
    runs = {m: study.run_dir(scfg, m, exp_cfg.seeds[0]) / "train" / "final" for m in ("cream", "pose")}
    if cfg.skip_experiment or not all(p.is_dir() for p in runs.values()):
        return Section(title=title, paragraphs=["No fine-tuned runs (the experiment stage was skipped)."]), {}
    tok = load_tokenizer(exp_cfg.base)
    base = load_model(exp_cfg.base)
    window = base.config.max_position_embeddings
    L = exp_cfg.target_len
    lengths = sorted({window, *(window * 2 ** i for i in range(1, 8) if window * 2 ** i <= L), L, 2 * L})
    stride = L // 2 if cfg.quick else PPL_STRIDE  # quick: 4 windows per length instead of 64
    max_tokens = 2 * L if cfg.quick else 8 * L
    models = {"base": load_model(exp_cfg.base, rope=exp_cfg.rope, factor=L / window),
              **{m: load_model(p) for m, p in runs.items()}}
    curves = {name: perplexity_by_length(m.eval(), tok, lengths, stride=stride, max_tokens=max_tokens)
              for name, m in models.items()}
    rows = [[name, *(f"{p:.2f}" for p in c.ppl)] for name, c in curves.items()]
    section = Section(
        title=title,
        paragraphs=[f"Perplexity of the held-out CPython documentation (the first {max_tokens:,} byte tokens) with "
                    f"windows of each length moved by {stride} tokens, scoring each token once (Position "
                    f"Interpolation / YaRN's protocol; CREAM reports the same table). N = {window}, L = {L:,}; "
                    f"the base uses the same {exp_cfg.rope} interpolation without fine-tuning; CREAM and PoSE: "
                    f"seed {exp_cfg.seeds[0]}. Lengths past L measure extrapolation."],
        tables=[(["model", *(f"{x:,}" for x in lengths)], rows)],
        figures=[F.fig_ppl_by_length(curves, window=window, target=L)],
    )
    return section, {name: c.records() for name, c in curves.items()}


STAGES = {"sampling": sampling_section, "coverage": coverage_section, "rope": rope_section,
          "experiment": experiment_section, "perplexity": perplexity_section, "study": study_section}


def run_demo(cfg: DemoConfig) -> tuple[Path, dict]:
    """Run every stage, write the report and results; returns (report path, results)."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    sections, results, timings = [], {}, {}
    for name, stage in STAGES.items():
        if name == "experiment" and cfg.skip_experiment:
            continue
        start = time.perf_counter()
        section, res = stage(cfg)
        timings[name] = round(time.perf_counter() - start, 2)
        print(f"[creamviz demo] {name:<10} done in {timings[name]:.1f} s", flush=True)
        sections.append(section)
        results[name] = res
    results["timings_s"] = timings
    (cfg.out / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))
    report = write_report(cfg.out / "report.html", "creamviz — CREAM in miniature", sections,
                          subtitle=f"seed {cfg.seed}; generated by `creamviz demo`", data=results)
    return report, results


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(type(obj))


def print_table(results: dict) -> None:
    """The headline numbers on the terminal."""
    middle = results["middle_accuracy"]
    print(f"\n{'model':<8} {'middle acc %':>13} {'± std':>7}  per seed")
    for method, v in middle.items():
        seeds = ", ".join(f"{x * 100:.0f}" for x in v["per_seed"])
        print(f"{method:<8} {v['mean'] * 100:13.1f} {v['std'] * 100:7.1f}  {seeds}")
    print(results["verdict"])

