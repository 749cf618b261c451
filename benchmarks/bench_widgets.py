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
    ok &= randpos_at_largest_settings()
    return 0 if ok else 1


RANDPOS_TARGET_S = 1.0  # what a user waits in the browser; the Python part is timed here


def randpos_at_largest_settings() -> bool:
    """RandPos at the largest settings the controls allow: the SamplerExplorer at N = 8192,
    L = 262,144, 200,000 samples, and the RopeExplorer at N = 16,384, L = 262,144 with dynamic
    scaling (the worst waits before the RandPos budget: 4.0-7.7 s and 3.1 s in the browser).
    Python compute per switch (median of 3, after one warm-up); the browser's own numbers (drawing
    included) are in test-artifacts/randpos-waits.json after tests/test_browser.py has run."""
    import json
    from pathlib import Path

    from creamviz.widgets import RopeExplorer

    ok = True
    ex = SamplerExplorer(train_len=8192, target_len=262144, n_samples=200_000, middle="truncnorm")
    rope_ex = RopeExplorer(train_len=16384, target_len=262144, scaling="dynamic", middle="truncnorm")
    for label, explorer in (("SamplerExplorer (N=8192, L=262144, 200k samples)", ex),
                            ("RopeExplorer (dynamic, N=16384, L=262144)", rope_ex)):
        times = {}
        for method in ("randpos", "cream"):
            explorer.method = "cream" if method == "randpos" else "randpos"  # warm-up: the other one
            explorer.method = method
            samples = []
            for _ in range(3):
                explorer.method = "cream" if method == "randpos" else "randpos"
                getattr(explorer, "_frequencies", {}).clear()  # RoPE: no cached frequency, a fresh draw
                start = time.perf_counter()
                explorer.method = method
                samples.append(time.perf_counter() - start)
            times[method] = float(np.median(samples))
            assert explorer.error == "", explorer.error
        ok &= times["randpos"] < RANDPOS_TARGET_S
        print(f"{label}: switch to RandPos {times['randpos'] * 1e3:6.0f} ms, to CREAM {times['cream'] * 1e3:6.0f} ms "
              f"Python (target < {RANDPOS_TARGET_S * 1e3:.0f} ms in the browser) "
              f"{'OK' if times['randpos'] < RANDPOS_TARGET_S else 'MISSED'}")
    browser = Path(__file__).resolve().parents[1] / "test-artifacts" / "randpos-waits.json"
    if browser.is_file():
        waits = json.loads(browser.read_text())
        for view, rows in waits.items():
            for row in rows:
                if "randpos" in row["change"]:
                    print(f"  browser ({view}): {row['change']}: {row['wait_s']:.2f} s")
    return ok


if __name__ == "__main__":
    sys.exit(main())
