"""Sampler speed at N = 4096, L = 32768: each figure a ratio against a baseline timed in this run.

Targets: CREAM segments vectorised vs a per-sample Python loop of the same steps >= 50x;
position_ids vs the official per-sample torch construction >= 10x; position_ids vs a plain
np.arange fill of the same shape <= 3x. Exits 1 if a target is missed.
"""

from __future__ import annotations

import bisect
import random
import sys
import time

import numpy as np
import torch

from creamviz.samplers import CreamSampler

N, L = 4096, 32768


def median_time(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def loop_segments(sampler: CreamSampler, n: int, seed: int) -> list[tuple[int, int, int]]:
    """The same steps, one sample at a time, grid precomputed once (a fair, plain loop)."""
    rng = random.Random(seed)
    x, cdf = (v.tolist() for v in sampler.rand_factor_grid)
    out = []
    for _ in range(n):
        edge = sampler.k if rng.random() < sampler.p_continuity else N // 3
        u = rng.random()
        j = bisect.bisect_right(cdf, u)  # np.interp by hand, clamped at the grid ends
        if j == 0:
            rf = int(x[0])
        elif j == len(cdf):
            rf = int(x[-1])
        else:
            rf = int(x[j - 1] + (u - cdf[j - 1]) * (x[j] - x[j - 1]) / (cdf[j] - cdf[j - 1]))
        chunk = N - 2 * edge
        half = rf / 2
        p_e = rng.randint(int(edge + (chunk - 1) * half), int(half * N - edge - 1))
        out.append((edge, p_e - chunk + 1, p_e))
    return out


def official_ids(segs: list[tuple[int, int, int]]) -> list[list[int]]:
    """The official per-sample construction: torch.arange pieces, cat, tolist."""
    rows = []
    for edge, p_s, p_e in segs:
        rows.append(torch.cat([torch.arange(0, edge), torch.arange(p_s, p_e + 1),
                               torch.arange(L - edge, L)]).tolist())
    return rows


def main() -> int:
    sampler = CreamSampler(N, L)
    ok = True

    n_vec, n_loop = 1_000_000, 100_000
    t_vec = median_time(lambda: sampler.sample(n_vec, seed=0), repeats=9) / n_vec
    t_loop = median_time(lambda: loop_segments(sampler, n_loop, 0), repeats=3) / n_loop
    ratio = t_loop / t_vec
    ok &= ratio >= 50
    print(f"segments   : vectorised {t_vec * 1e9:8.1f} ns/sample, loop {t_loop * 1e9:8.1f} ns/sample "
          f"-> {ratio:6.1f}x  (target >= 50x) {'OK' if ratio >= 50 else 'MISSED'}")

    n_ids, n_official = 2000, 300
    seg = sampler.sample(n_ids, seed=1)
    t_ids = median_time(seg.position_ids) / n_ids
    segs = loop_segments(sampler, n_official, 1)
    t_off = median_time(lambda: official_ids(segs), repeats=3) / n_official

    def arange_fill():
        out = np.empty((n_ids, N), dtype=np.int64)
        out[:] = np.arange(N)
        return out

    t_fill = median_time(arange_fill) / n_ids
    r_off, r_fill = t_off / t_ids, t_ids / t_fill
    ok &= r_off >= 10 and r_fill <= 3
    print(f"ids        : ours {t_ids * 1e6:8.2f} us/sample, official {t_off * 1e6:8.2f} us/sample "
          f"-> {r_off:6.1f}x faster (target >= 10x) {'OK' if r_off >= 10 else 'MISSED'}")
    print(f"ids        : ours / np.arange fill {t_fill * 1e6:6.2f} us/sample "
          f"-> {r_fill:6.2f}x (target <= 3x) {'OK' if r_fill <= 3 else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
