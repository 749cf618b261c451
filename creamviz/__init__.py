"""creamviz — explore, teach, audit and train CREAM long-context position sampling.

Submodules (import what you need; heavy ones such as torch load only on use):
``samplers`` position-id schemes, ``coverage`` relative distances, ``theorem`` Theorem B.1 audit,
``figures`` plotly builders, ``widgets`` explorers, ``models`` / ``training`` / ``evaluate`` /
``attention`` for fine-tuning runs and what they learned, ``report`` and ``cli``.
"""

from creamviz.samplers import (
    SAMPLERS,
    ContiguousSampler,
    CreamSampler,
    PoseSampler,
    RandPosSampler,
    Segments,
    make_sampler,
)

__version__ = "0.1.0"
__all__ = ["SAMPLERS", "ContiguousSampler", "CreamSampler", "PoseSampler", "RandPosSampler",
           "Segments", "make_sampler", "__version__"]
