"""Files shipped inside the package, read through :mod:`importlib.resources` so that they are found
from a wheel as well as from a source checkout:

- ``tiny-base/``   the pre-trained byte-level tiny Llama (window N = 256) and its training record;
- ``corpus/``      the natural-text corpus (CPython's pydoc topics, PSF licence);
- ``eval/``        the fixed evaluation sets (``eval/real/`` for SmolLM2's tokenizer);
- ``chat/``        the LongChat-Lines conversations used by chat training;
- ``study/``       the sampler study's records and summary.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

__all__ = ["resource_path"]


def resource_path(*parts: str) -> Path:
    """File-system path of a shipped file or folder, e.g. ``resource_path("eval", "kv_L512.jsonl")``.

    The package must be installed as files (a wheel, an editable or a source install); the path is
    returned whether or not it exists.
    """
    return Path(os.fspath(files(__name__).joinpath(*parts)))
