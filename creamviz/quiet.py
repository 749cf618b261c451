"""Quiet transformers for notebooks: no "Loading weights" / "Writing model shards" progress bars
and no advisory warnings between the cells' own output. One call, idempotent:

    from creamviz.quiet import quiet_transformers
    quiet_transformers()

Errors are still shown (verbosity ERROR); ``quiet_transformers(False)`` restores the defaults.
"""

from __future__ import annotations

__all__ = ["quiet_transformers"]


def quiet_transformers(quiet: bool = True) -> None:
    """Switch transformers' (and huggingface_hub's) progress bars and warnings off (or back on)."""
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as hf_logging

    if quiet:
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        disable_progress_bars()
    else:
        hf_logging.set_verbosity_warning()
        hf_logging.enable_progress_bar()
        enable_progress_bars()
