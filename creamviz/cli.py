"""The `creamviz` command: one sub-command per pipeline stage.

Each sub-command lives in its own module with a ``main(argv)`` that owns its argparse, so
``python -m creamviz.<module>`` and ``accelerate launch -m creamviz.<module>`` work the same way.
"""

from __future__ import annotations

import importlib
import sys

# sub-command -> (module, one-line help)
COMMANDS = {
    "demo": ("creamviz.demo", "run the whole pipeline headless and write an HTML report"),
    "train": ("creamviz.train", "fine-tune a model with a position sampler"),
    "pretrain": ("creamviz.tiny_base", "rebuild the tiny base checkpoint shipped in data/"),
    "fetch-model": ("creamviz.fetch", "download and convert a named real model once (e.g. smollm2-135m)"),
}


def _usage() -> str:
    lines = ["usage: creamviz <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"creamviz: unknown command {name!r}; valid: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
