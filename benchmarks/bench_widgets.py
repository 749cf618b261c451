"""Explorer update latency at default settings (target < 200 ms per update).

Prints the median update time of each explorer over several slider moves, and its ratio to the
plain figure builders timed in the same run (the widget overhead). Exits 1 if a target is missed.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from creamviz.samplers import CreamSampler
from creamviz.widgets import SamplerExplorer, TheoremExplorer, sampler_figures, theorem_figures

TARGET_S = 0.200


def median_time(fn, repeats: int = 7) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> int:
    ok = True
    ex = SamplerExplorer()
    sigmas = [2.0, 2.5, 3.5, 4.0, 2.2, 3.1, 2.8]
    t_widget = median_time(lambda i: setattr(ex, "sigma", sigmas[i]))
    t_plain = median_time(lambda i: sampler_figures(CreamSampler(4096, 32768, sigma=sigmas[i]), 20_000, 0))
    ok &= t_widget < TARGET_S
    print(f"SamplerExplorer (N=4096, L=32768, 20k samples): update {t_widget * 1e3:6.1f} ms "
          f"(target < {TARGET_S * 1e3:.0f} ms) {'OK' if t_widget < TARGET_S else 'MISSED'}; "
          f"plain builders {t_plain * 1e3:6.1f} ms -> widget overhead x{t_widget / t_plain:.2f}")

    th = TheoremExplorer()
    heads = [1, 2, 3, 4, 3, 2, 1]
    t_widget = median_time(lambda i: setattr(th, "head_len", heads[i]))
    t_plain = median_time(lambda i: theorem_figures(12, 60, heads[i], 3))
    ok &= t_widget < TARGET_S
    print(f"TheoremExplorer (N=12, L=60): update {t_widget * 1e3:6.1f} ms "
          f"(target < {TARGET_S * 1e3:.0f} ms) {'OK' if t_widget < TARGET_S else 'MISSED'}; "
          f"plain builders {t_plain * 1e3:6.1f} ms -> widget overhead x{t_widget / t_plain:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
