"""Benchmark the closed-form coverage functions against brute force measured in the same run.

Targets: ``span_size`` for 1M CREAM samples at N = 4096, L = 32768
in < 0.5 s; ``distance_counts`` for 100K samples at L = 262144 in < 0.25 s. Prints medians of
several runs and the ratio against brute force per sample; exits 1 if a target is missed.

Run: ``.venv/bin/python benchmarks/bench_coverage.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from creamviz import coverage as cv
from creamviz.samplers import CreamSampler


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--brute-samples", type=int, default=3, help="samples timed for the brute-force baseline")
    args = parser.parse_args()
    ok = True

    # ---- span_size: 1M CREAM samples, N = 4096, L = 32768 --------------------------------
    big_n, big_l, n = 4096, 32768, 1_000_000
    seg = CreamSampler(big_n, big_l).sample(n, seed=0)
    t_closed = median_seconds(lambda: cv.span_size(seg), args.repeats)
    ids = seg[: args.brute_samples].position_ids()
    t_brute = median_seconds(lambda: [cv.relative_distances(row) for row in ids], 1) / len(ids)
    per_sample = t_closed / n
    target = 0.5
    ok &= t_closed < target
    print(f"span_size        n={n:,} N={big_n} L={big_l}: median {t_closed:.3f} s over {args.repeats} runs "
          f"(target < {target} s) {'OK' if t_closed < target else 'MISSED'}")
    print(f"  per sample: closed form {per_sample * 1e9:.0f} ns vs relative_distances {t_brute * 1e3:.1f} ms "
          f"-> {t_brute / per_sample:,.0f}x faster (brute force for all {n:,} would take ~{t_brute * n / 3600:.1f} h)")

    # ---- distance_counts: 100K samples, L = 262144 ---------------------------------------
    big_n, big_l, n = 4096, 262144, 100_000
    seg = CreamSampler(big_n, big_l).sample(n, seed=1)
    t_counts = median_seconds(lambda: cv.distance_counts(seg), args.repeats)
    ids = seg[: args.brute_samples].position_ids()

    def brute_counts():
        counts = np.zeros(big_l, dtype=np.int64)
        for row in ids:
            counts[cv.relative_distances(row)] += 1
        return counts

    t_brute = median_seconds(brute_counts, 1) / len(ids)
    t_fft = median_seconds(lambda: cv.distance_counts_from_ids(ids, big_l), 1) / len(ids)
    target = 0.25
    ok &= t_counts < target
    print(f"distance_counts  n={n:,} N={big_n} L={big_l}: median {t_counts:.3f} s over {args.repeats} runs "
          f"(target < {target} s) {'OK' if t_counts < target else 'MISSED'}")
    print(f"  per sample: difference array {t_counts / n * 1e9:.0f} ns vs relative_distances {t_brute * 1e3:.1f} ms "
          f"({t_brute / (t_counts / n):,.0f}x) vs FFT ids path {t_fft * 1e3:.1f} ms ({t_fft / (t_counts / n):,.0f}x)")

    # ---- coverage curve (informational, no target) ---------------------------------------
    t_curve = median_seconds(lambda: cv.coverage_curve(seg), max(1, args.repeats // 2))
    print(f"coverage_curve   n={n:,} L={big_l}: median {t_curve:.3f} s (no target)")

    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
