#!/usr/bin/env python3
"""Prepare what scripts/gpu_check.py needs on a GPU machine that cannot download anything.

Run on the CPU machine, in the repository root (after ``creamviz fetch-model smollm2-135m``)::

    python scripts/gpu_carry.py

It writes the ignored folder ``.gpu_carry/``:

- ``a/smollm2.gguf.part0`` and ``b/smollm2.gguf.part1``: the SmolLM2-135M-Instruct GGUF file
  (98 MB, the smallest faithful copy of the model: the converted fp32 safetensors are 540 MB) cut in
  two, because one call to the GPU machine carries at most 64 MiB together with the working tree;
- ``b/manifest.json``: the parts' order, sizes and the whole file's SHA-256;
- ``b/wheels/``: the ``gguf`` wheel (pure Python; the machine's image lacks it; transformers needs it
  to read the GGUF file).

The GPU machine keeps ignored files between calls while it stays warm (30 s), so the two parts go in
two calls in quick succession; gpu_check.py reassembles and checks them. Without both parts it runs its
part (a) on the tiny model instead, clearly labelled.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
CARRY = REPO / ".gpu_carry"
LIMIT = 64 * 2**20  # bytes one call may move: working tree + carried paths


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tree_bytes() -> int:
    """Bytes of the files that travel anyway: tracked and untracked-not-ignored."""
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout.split(b"\0")
    return sum((REPO / p.decode()).stat().st_size for p in out if p and (REPO / p.decode()).is_file())


def main() -> int:
    sys.path.insert(0, str(REPO))
    from creamviz import fetch
    from creamviz.models import NAMED_MODELS

    spec = NAMED_MODELS["smollm2-135m"]
    gguf = fetch.gguf_path("smollm2-135m")
    if not gguf.is_file():
        print(f"{gguf} is missing: run `creamviz fetch-model smollm2-135m` first", file=sys.stderr)
        return 2
    digest = _sha256(gguf)
    if digest != spec.gguf_sha256:
        print(f"{gguf}: SHA-256 {digest} is not the expected {spec.gguf_sha256}", file=sys.stderr)
        return 2
    data = gguf.read_bytes()
    half = (len(data) + 1) // 2
    for sub in ("a", "b"):
        (CARRY / sub).mkdir(parents=True, exist_ok=True)
    parts = [CARRY / "a" / "smollm2.gguf.part0", CARRY / "b" / "smollm2.gguf.part1"]
    parts[0].write_bytes(data[:half])
    parts[1].write_bytes(data[half:])
    wheels = CARRY / "b" / "wheels"
    wheels.mkdir(exist_ok=True)
    from importlib.metadata import version

    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "-d", str(wheels), f"gguf=={version('gguf')}"], check=True)
    manifest = {"file": gguf.name, "sha256": digest, "bytes": len(data),
                "parts": [{"path": str(p.relative_to(REPO)), "bytes": p.stat().st_size} for p in parts]}
    (CARRY / "b" / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    tree = _tree_bytes()
    for sub in ("a", "b"):
        size = sum(f.stat().st_size for f in (CARRY / sub).rglob("*") if f.is_file())
        total = tree + size
        flag = "ok" if total <= LIMIT else "OVER THE 64 MiB LIMIT"
        print(f".gpu_carry/{sub}: {size / 2**20:.1f} MiB + working tree {tree / 2**20:.1f} MiB = "
              f"{total / 2**20:.1f} MiB ({flag})")
    print("GPU machine, two calls in quick succession (it keeps ignored files only while warm, 30 s):\n"
          "  1. carry ['.gpu_carry/a'], command 'ls -la .gpu_carry/a', timeout_s 120\n"
          "  2. carry ['.gpu_carry/b'], command 'PYTHONUNBUFFERED=1 python3 scripts/gpu_check.py', timeout_s 600")
    return 0


if __name__ == "__main__":
    sys.exit(main())
