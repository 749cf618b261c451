"""The other half of CREAM: RoPE interpolation, per rotary dimension, as transformers computes it.

CREAM feeds N tokens whose position ids reach L; RoPE is *interpolated* so that positions up to L
land in what the model knows from pre-training. This module shows what an interpolation does to
each rotary dimension, and which rotation angles the sampled relative distances exercise.

RoPE rotates the pair ``i`` (``i = 0 .. d/2 - 1``, ``d`` the rotary dimension) of every query and
key by the angle ``p · θ_i`` at position ``p``; a query at ``m`` and a key at ``n`` interact through
``(m - n) · θ_i`` only. ``θ_i`` is the *inverse frequency*; without scaling
``θ_i = base^(-2i/d)`` (``base`` = ``rope_theta``). A scaling replaces ``θ`` by ``θ'``:

- :func:`rope_config` builds the ``transformers`` config of a model with a scaling set (reusing
  :func:`creamviz.models.rope_parameters` / ``_apply_rope`` for linear, YaRN and dynamic, so the
  config is the one ``load_model(..., rope=, factor=)`` fine-tunes with);
- :func:`rope_spectrum` calls transformers' own RoPE init code on it (``ROPE_INIT_FUNCTIONS`` of
  ``transformers.modeling_rope_utils``, the model's ``compute_default_rope_parameters`` for no
  scaling) — nothing is re-derived here — and returns a :class:`RopeSpectrum`: ``θ'``, the
  unscaled ``θ``, the attention factor (YaRN's temperature, applied to cos and sin, so to the
  logit squared), wavelengths ``2π / θ'``, rotations within N and within L;
- :func:`logit_decay`: the long-term decay of RoFormer §3.4.3 from the frequencies;
- :func:`phase_coverage`: which (dimension, phase) cells the relative distances of a sampler
  exercise, against the cells a length-L input needs.

Importing this module does not import torch (the computations do, through transformers).
"""

from __future__ import annotations

import copy
import functools
import importlib
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from creamviz.validation import check_int, check_real, check_size

__all__ = [
    "SCALINGS",
    "PRESETS",
    "RopeSpectrum",
    "PhaseCoverage",
    "base_config",
    "rope_config",
    "rope_spectrum",
    "spectrum_from_config",
    "logit_decay",
    "decay_distances",
    "decay_curves",
    "phase_index",
    "phase_coverage",
    "pretraining_coverage",
    "sampler_distance_frequency",
    "RopeOverview",
    "rope_overview",
]

SCALINGS = ("default", "linear", "dynamic", "yarn", "longrope", "llama3")  # None means "default"
# Config-only presets: the RoPE spectrum depends on head_dim, rope_theta and N alone, so these need
# no weights. Values are the published config.json fields of each checkpoint.
PRESETS = {
    "smollm2-135m": dict(  # HuggingFaceTB/SmolLM2-135M: head_dim 64, theta 1e5, N = 8192
        hidden_size=576, num_attention_heads=9, num_key_value_heads=3, num_hidden_layers=30,
        intermediate_size=1536, rope_theta=100000.0, max_position_embeddings=8192, vocab_size=49152),
    "llama2-7b": dict(  # meta-llama/Llama-2-7b-hf (the paper's base): head_dim 128, theta 1e4, N = 4096
        hidden_size=4096, num_attention_heads=32, num_key_value_heads=32, num_hidden_layers=32,
        intermediate_size=11008, rope_theta=10000.0, max_position_embeddings=4096, vocab_size=32000),
}
LLAMA3_DEFAULTS = {"low_freq_factor": 1.0, "high_freq_factor": 4.0}  # Llama 3.1's published values
YARN_DEFAULTS = {"beta_fast": 32.0, "beta_slow": 1.0}  # transformers' (and the YaRN paper's) defaults
REGION_TOLERANCE = 0.01  # |log(scale) / log(factor)| below this: "kept"; above 1 - this: "interpolated"
PHASE_BLOCK = 1 << 22  # (dimension, distance) cells binned at once (16 MiB of int32)
DECAY_BLOCK = 1 << 20  # (distance, dimension) complex terms summed at once (16 MiB)
MAX_DECAY_POINTS = 1 << 18  # distances a decay curve is evaluated at (a plot needs about 1024)
MAX_COVERAGE_BYTES = 1 << 30  # phase-coverage working arrays (the explorer's largest case needs ~0.5 GiB)


# --------------------------------------------------------------------------- validation




def _scaling_name(scaling) -> str:
    name = "default" if scaling is None else scaling
    if name not in SCALINGS:
        raise ValueError(f"scaling={scaling!r} is not supported; valid: None, {', '.join(map(repr, SCALINGS))}")
    return name


# --------------------------------------------------------------------------- configs
def base_config(model):
    """The unscaled ``transformers`` config of ``model`` (a fresh copy).

    ``model``: a ``PretrainedConfig`` (copied), a preset name (``"smollm2-135m"``, ``"llama2-7b"``:
    config only, see ``PRESETS``; a fetched ``smollm2-135m`` reads its cached config.json instead),
    ``"tiny"`` or a local model directory (read with :func:`creamviz.models.load_config`, which
    needs safetensors weights there).
    """
    from transformers import LlamaConfig, PretrainedConfig

    if isinstance(model, PretrainedConfig):
        return copy.deepcopy(model)
    from creamviz import models

    if isinstance(model, str) and model in PRESETS:
        if model in getattr(models, "NAMED_MODELS", {}) and models.is_fetched(model):
            return models.load_config(model)  # the fetched checkpoint's own config.json
        preset = dict(PRESETS[model])
        theta = preset.pop("rope_theta")
        return LlamaConfig(**preset, rope_parameters={"rope_type": "default", "rope_theta": theta})
    try:
        return models.load_config(model)
    except ValueError as err:
        raise ValueError(f"model={model!r}: {err}; valid: a transformers config, 'tiny', "
                         f"{', '.join(map(repr, PRESETS))} or a local model directory") from None


def _window_and_theta(config) -> tuple[int, float]:
    """(N, rope_theta) of a config, unscaled or already extended (then N = its original window)."""
    params = dict(getattr(config, "rope_parameters", None) or {})
    theta = params.get("rope_theta", getattr(config, "rope_theta", None))
    if theta is None:
        raise ValueError("the config has no rope_theta: not a RoPE model")
    theta = check_real("rope_theta", theta, 1.0, low_open=True, hint=" (the config's RoPE base)")
    window = params.get("original_max_position_embeddings")
    if not window:  # linear keeps no N: load_model set max_position_embeddings = factor * N
        factor = params.get("factor") if params.get("rope_type") == "linear" else None
        window = round(config.max_position_embeddings / factor) if factor else config.max_position_embeddings
    return int(window), float(theta)


def rope_config(model="tiny", scaling=None, factor=None, *, train_len=None, rope_theta=None,
                beta_fast=None, beta_slow=None, low_freq_factor=None, high_freq_factor=None,
                short_factor=None, long_factor=None):
    """The ``transformers`` config of ``model`` with RoPE ``scaling`` from N to L = factor · N.

    - ``scaling``: ``None`` / ``"default"`` (no interpolation; ``factor`` must be None or 1),
      ``"linear"``, ``"dynamic"``, ``"yarn"`` (built by :func:`creamviz.models._apply_rope`, the
      path ``load_model`` takes), ``"llama3"`` (``low_freq_factor`` / ``high_freq_factor``, default
      Llama 3.1's 1 and 4) or ``"longrope"`` (``short_factor`` and ``long_factor``: d/2 positive
      numbers each, required — LongRoPE searches them per model, there is no default).
    - ``train_len``: N, the pre-trained window (default: the model's); ``rope_theta``: the base
      (default: the model's); ``beta_fast`` / ``beta_slow``: YaRN's ramp ends in rotations within N
      (default 32 / 1).
    Invalid values raise ValueError naming the parameter.
    """
    from creamviz import models

    name = _scaling_name(scaling)
    config = base_config(model)
    window, theta = _window_and_theta(config)
    big_n = window if train_len is None else check_int("train_len", train_len, 2)
    theta = theta if rope_theta is None else check_real("rope_theta", rope_theta, 1.0, low_open=True)
    config.max_position_embeddings = big_n
    config.rope_parameters = {"rope_type": "default", "rope_theta": theta}
    if name == "default":
        if factor not in (None, 1, 1.0):
            raise ValueError(f"factor={factor!r} given with scaling=None; pass a scaling "
                             f"({', '.join(SCALINGS[1:])}) or factor=None")
        return config
    if factor is None or isinstance(factor, bool) or not isinstance(factor, numbers.Real) or \
            not math.isfinite(factor) or factor < 1.0:
        raise ValueError(f"factor={factor!r} must be a number >= 1 (L / N) when scaling={name!r}")
    unused = {"beta_fast": beta_fast, "beta_slow": beta_slow} if name != "yarn" else {}
    if name != "llama3":
        unused.update(low_freq_factor=low_freq_factor, high_freq_factor=high_freq_factor)
    if name != "longrope":
        unused.update(short_factor=short_factor, long_factor=long_factor)
    given = [k for k, v in unused.items() if v is not None]
    if given:
        raise ValueError(f"{', '.join(given)} do not apply to scaling={name!r}")
    # linear / yarn / dynamic exactly as load_model sets them; llama3 and longrope start from yarn's
    # dict (rope_theta, factor, original_max_position_embeddings = N, max_position_embeddings = L)
    models._apply_rope(config, name if name in models.ROPE_TYPES else "yarn", float(factor))
    params = dict(config.rope_parameters)
    if name == "yarn":
        fast = YARN_DEFAULTS["beta_fast"] if beta_fast is None else check_real("beta_fast", beta_fast, 0, low_open=True)
        slow = YARN_DEFAULTS["beta_slow"] if beta_slow is None else check_real("beta_slow", beta_slow, 0, low_open=True)
        if fast <= slow:
            raise ValueError(f"beta_fast={fast:g} must exceed beta_slow={slow:g} (rotations within N)")
        if beta_fast is not None or beta_slow is not None:
            params.update(beta_fast=fast, beta_slow=slow)
    elif name == "llama3":
        low = check_real("low_freq_factor", LLAMA3_DEFAULTS["low_freq_factor"] if low_freq_factor is None
                          else low_freq_factor, 0, low_open=True)
        high = check_real("high_freq_factor", LLAMA3_DEFAULTS["high_freq_factor"] if high_freq_factor is None
                           else high_freq_factor, 0, low_open=True)
        if high <= low:
            raise ValueError(f"high_freq_factor={high:g} must exceed low_freq_factor={low:g}")
        params.update(rope_type="llama3", low_freq_factor=low, high_freq_factor=high)
    elif name == "longrope":
        half = _rotary_dim(config) // 2
        lists = {}
        for key, value in (("short_factor", short_factor), ("long_factor", long_factor)):
            arr = None if value is None else np.asarray(value, dtype=np.float64)
            if arr is None or arr.shape != (half,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
                raise ValueError(f"{key} must be {half} positive numbers (one per rotary pair, d/2 = {half}) "
                                 f"for scaling='longrope', got {value!r:.80}")
            lists[key] = arr.tolist()
        params.update(rope_type="longrope", **lists)
    config.rope_parameters = params
    if name in ("llama3", "longrope"):  # built here, not by models: let transformers check the keys
        try:
            config.validate_rope()
        except KeyError as err:  # transformers names the missing keys
            raise ValueError(f"scaling={name!r}: {err}") from None
    return config


def _rotary_dim(config) -> int:
    """d, the rotated channels per head; ValueError when it holds no rotary pair (d < 2)."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    partial = (config.rope_parameters or {}).get("partial_rotary_factor", 1.0)
    rotary = int(head_dim * partial)
    if rotary < 2:
        raise ValueError(f"head_dim={head_dim} (partial_rotary_factor={partial}) gives {rotary} rotated channels "
                         "per head; valid: at least 2 (one rotary pair)")
    return rotary


# --------------------------------------------------------------------------- the spectrum
@dataclass(frozen=True)
class RopeSpectrum:
    """RoPE per rotary pair ``i = 0 .. d/2 - 1`` for one model and scaling (arrays of shape (d/2,)).

    ``inv_freq`` (θ'_i) and ``attention_factor`` are what transformers computes for the scaled
    config; ``base_inv_freq`` (θ_i) for the same config without scaling (same N and base).
    """

    scaling: str  # default / linear / dynamic / yarn / longrope / llama3
    factor: float  # L / N of the scaling (1 for default)
    rope_theta: float  # the base
    train_len: int  # N, the pre-trained window
    target_len: int  # L, the target length
    seq_len: int | None  # sequence length the frequencies were computed for (dynamic, longrope)
    inv_freq: np.ndarray  # (d/2,) θ'_i, transformers' float32 values as float64
    base_inv_freq: np.ndarray  # (d/2,) θ_i without scaling
    attention_factor: float  # transformers' attention_scaling (cos and sin are multiplied by it)
    boundaries: dict = field(default_factory=dict)  # published region edges, as wavelengths in tokens

    @property
    def rotary_dim(self) -> int:
        """d, the number of rotated channels per head (2 per pair)."""
        return 2 * len(self.inv_freq)

    @property
    def wavelength(self) -> np.ndarray:
        """Tokens per full turn of pair i after scaling, ``2π / θ'_i``: (d/2,)."""
        return 2 * np.pi / self.inv_freq

    @property
    def base_wavelength(self) -> np.ndarray:
        """``2π / θ_i`` without scaling: (d/2,)."""
        return 2 * np.pi / self.base_inv_freq

    @property
    def scale(self) -> np.ndarray:
        """How much slower pair i turns after scaling, ``θ_i / θ'_i``: 1 = kept, factor = interpolated."""
        return self.base_inv_freq / self.inv_freq

    def rotations(self, length: int, *, base: bool = False) -> np.ndarray:
        """Full turns of pair i over ``length`` positions, ``length · θ / 2π`` (θ or, default, θ')."""
        return length * (self.base_inv_freq if base else self.inv_freq) / (2 * np.pi)

    @property
    def interpolation(self) -> np.ndarray:
        """``log(scale) / log(factor)``: 0 = the pair keeps its frequency (extrapolates), 1 = it is
        divided by the factor (interpolates); dynamic NTK can exceed 1. (d/2,); zeros if factor = 1."""
        if self.factor <= 1.0:
            return np.zeros_like(self.inv_freq)
        return np.log(self.scale) / math.log(self.factor)

    @property
    def regions(self) -> np.ndarray:
        """Per pair: ``"kept"`` (interpolation < 1 %), ``"interpolated"`` (> 99 %, beyond 1 included)
        or ``"partial"``; (d/2,) strings."""
        frac = self.interpolation
        out = np.full(frac.shape, "partial", dtype=object)
        out[frac < REGION_TOLERANCE] = "kept"
        out[frac > 1 - REGION_TOLERANCE] = "interpolated"
        return out.astype(str)


def _init_function(config):
    """transformers' RoPE init function for the config's rope_type (the model's default one for
    no scaling: transformers 5 keeps ``compute_default_rope_parameters`` on the model's rotary class)."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    rope_type = config.rope_parameters["rope_type"]
    if rope_type != "default":
        return ROPE_INIT_FUNCTIONS[rope_type]
    model_type = config.model_type
    module = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
    for attr in dir(module):
        cls = getattr(module, attr)
        if attr.endswith("RotaryEmbedding") and hasattr(cls, "compute_default_rope_parameters"):
            return cls.compute_default_rope_parameters
    raise ValueError(f"model_type={model_type!r} has no rotary embedding with compute_default_rope_parameters")


def spectrum_from_config(config, *, seq_len=None, target_len=None) -> RopeSpectrum:
    """:class:`RopeSpectrum` of a config whose ``rope_parameters`` are already set (see
    :func:`rope_config`). ``seq_len``: see :func:`rope_spectrum`; ``target_len``: L (default
    ``round(factor · N)``)."""
    import torch

    params = dict(config.rope_parameters)
    name = params["rope_type"]
    big_n, theta = _window_and_theta(config)
    _rotary_dim(config)  # at least one rotary pair
    factor = float(params.get("factor") or 1.0)
    big_l = int(round(factor * big_n)) if target_len is None else check_int("target_len", target_len, 2)
    if name in ("dynamic", "longrope"):
        seq_len = big_l if seq_len is None else check_int("seq_len", seq_len, 1)
    else:
        seq_len = None  # the other types ignore the sequence length
    # the argument the model's forward passes (modeling_rope_utils.dynamic_rope_update): nothing up to N
    # (the init-time frequencies stay), beyond N dynamic gets max(position_ids) + 1 as an int64 tensor
    # and longrope the int N + 1; mirrored here so the values agree to the last bit
    if seq_len is None or seq_len <= big_n:
        length_arg = None
    else:
        length_arg = torch.tensor(seq_len) if name == "dynamic" else big_n + 1
    with torch.no_grad():
        inv_freq, attention = _init_function(config)(config, device="cpu", seq_len=length_arg)
        unscaled = copy.deepcopy(config)
        unscaled.max_position_embeddings = big_n
        unscaled.rope_parameters = {"rope_type": "default", "rope_theta": theta}
        base, _ = _init_function(unscaled)(unscaled, device="cpu")
    boundaries = {}
    if name == "yarn":
        fast = params.get("beta_fast") or YARN_DEFAULTS["beta_fast"]  # transformers' `or 32` / `or 1`
        slow = params.get("beta_slow") or YARN_DEFAULTS["beta_slow"]
        boundaries = {f"N/β_fast (β_fast = {fast:g})": big_n / fast, f"N/β_slow (β_slow = {slow:g})": big_n / slow}
    elif name == "llama3":
        boundaries = {f"N/high_freq_factor ({params['high_freq_factor']:g})": big_n / params["high_freq_factor"],
                      f"N/low_freq_factor ({params['low_freq_factor']:g})": big_n / params["low_freq_factor"]}
    return RopeSpectrum(scaling=name, factor=factor, rope_theta=theta, train_len=big_n, target_len=big_l,
                        seq_len=seq_len, inv_freq=inv_freq.double().numpy(), base_inv_freq=base.double().numpy(),
                        attention_factor=float(attention), boundaries=boundaries)


def rope_spectrum(model="tiny", scaling=None, factor=None, *, train_len=None, target_len=None, seq_len=None,
                  **scaling_params) -> RopeSpectrum:
    """Per-dimension RoPE of ``model`` under ``scaling`` with ``factor``, as transformers computes it.

    ``model``, ``scaling``, ``factor``, ``train_len`` (N) and the ``scaling_params`` (``rope_theta``,
    ``beta_fast``, ``beta_slow``, ``low_freq_factor``, ``high_freq_factor``, ``short_factor``,
    ``long_factor``) as in :func:`rope_config`. ``target_len``: L (default ``round(factor · N)``,
    N for no scaling).

    ``seq_len`` matters for ``"dynamic"`` and ``"longrope"`` only, which depend on the sequence
    length: the model recomputes them from ``max(position_ids) + 1``. Dynamic NTK raises its base
    with ``seq_len`` (no change up to N); LongRoPE uses ``short_factor`` up to N and ``long_factor``
    beyond. Default: ``seq_len = L`` — CREAM's, PoSE's and RandPos's ids reach L, so every training
    window (N tokens) is already in the long regime, while an evaluation input shorter than N is not.
    """
    config = rope_config(model, scaling, factor, train_len=train_len, **scaling_params)
    return spectrum_from_config(config, seq_len=seq_len, target_len=target_len)


# --------------------------------------------------------------------------- long-term decay
def logit_decay(inv_freq, distances, *, attention_factor: float = 1.0) -> np.ndarray:
    """RoFormer's relative upper bound of the attention logit at each relative distance r: (R,).

    With ``h_i = q_[i] conj(k_[i])`` (pair i as a complex number) the RoPE logit at distance r is
    ``Re Σ_i h_i e^{i r θ_i}``; Abel summation (RoFormer §3.4.3, h_{d/2} = 0) gives
    ``|Σ_i h_i e^{i r θ_i}| ≤ max_i |h_{i+1} - h_i| · Σ_{j=1}^{d/2} |S_j(r)|`` with
    ``S_j(r) = Σ_{k<j} e^{i r θ_k}``. This returns ``attention_factor² · (2/d) Σ_j |S_j(r)|`` (the
    mean, as RoFormer's Figure 2 plots it; transformers multiplies cos and sin by the attention
    factor, so the logit by its square). ``inv_freq``: (d/2,) in transformers' order;
    ``distances``: (R,) numbers ≥ 0.
    """
    theta = np.asarray(inv_freq, dtype=np.float64)
    r = np.asarray(distances, dtype=np.float64)
    if theta.ndim != 1 or len(theta) == 0 or r.ndim != 1:
        raise ValueError(f"inv_freq must be (d/2,) and distances (R,), got shapes {theta.shape} and {r.shape}")
    if np.any(r < 0) or not np.all(np.isfinite(r)):
        raise ValueError("distances must be finite and >= 0")
    out = np.empty(len(r), dtype=np.float64)
    rows = max(1, DECAY_BLOCK // len(theta))
    for start in range(0, len(r), rows):
        angle = np.outer(r[start:start + rows], theta)  # (rows, d/2)
        partial = np.cumsum(np.exp(1j * angle), axis=1)  # S_1 .. S_{d/2}
        out[start:start + rows] = np.abs(partial).mean(axis=1)
    return float(attention_factor) ** 2 * out


def decay_distances(max_distance: int, n_points: int = 1024) -> np.ndarray:
    """Distances to evaluate the decay at: 0 and about ``n_points`` geometrically spaced integers up
    to ``max_distance`` (every integer near 0), sorted and distinct. (R,) int64."""
    max_distance = check_int("max_distance", max_distance, 1)
    n_points = check_int("n_points", n_points, 2)
    check_size("decay_distances", n_points, MAX_DECAY_POINTS, unit="points (n_points)")
    grid = np.unique(np.round(np.geomspace(1, max_distance, n_points)).astype(np.int64))
    return np.concatenate([[0], grid])


def decay_curves(spectrum: RopeSpectrum, n_points: int = 1024) -> dict:
    """:func:`logit_decay` up to L - 1 on :func:`decay_distances`: name -> (distances, bound) for the
    pre-trained θ, the scaled θ' and, when the scaling has an attention factor, θ' times its square."""
    n_points = check_int("n_points", n_points, 2)
    check_size("decay_curves", n_points, MAX_DECAY_POINTS, unit="points (n_points)")
    distances = decay_distances(max(1, spectrum.target_len - 1), n_points)
    curves = {"pre-trained θ": (distances, logit_decay(spectrum.base_inv_freq, distances))}
    if spectrum.scaling != "default":
        label = f"{spectrum.scaling} θ'"
        bound = logit_decay(spectrum.inv_freq, distances)
        if spectrum.attention_factor != 1.0:
            curves[f"{label} × attention factor² ({spectrum.attention_factor ** 2:.3g})"] = (
                distances, spectrum.attention_factor ** 2 * bound)
        curves[label] = (distances, bound)
    return curves


# --------------------------------------------------------------------------- phase coverage
def phase_index(inv_freq, n_distances: int, n_bins: int) -> np.ndarray:
    """Phase cell of every (pair i, distance r), r = 0 .. n_distances - 1: (d/2, n_distances) int32.

    With ``t = r · (θ_i / 2π)`` full turns (float64, from transformers' float32 θ), the angle
    ``r θ_i mod 2π`` is ``2π (t - ⌊t⌋)``; it falls in bin ``b = ⌊(t - ⌊t⌋) · n_bins⌋`` of ``n_bins``
    equal bins of ``[0, 2π)`` (clipped to ``n_bins - 1`` against round-off).
    """
    turns_per_token = np.asarray(inv_freq, dtype=np.float64) / (2 * np.pi)
    n_distances = check_int("n_distances", n_distances, 1)
    n_bins = check_int("n_bins", n_bins, 1)
    check_size("phase_index", len(turns_per_token) * n_distances * 4, MAX_COVERAGE_BYTES, unit="bytes")
    r = np.arange(n_distances, dtype=np.float64)
    out = np.empty((len(turns_per_token), n_distances), dtype=np.int32)
    rows = max(1, PHASE_BLOCK // n_distances)
    for start in range(0, len(turns_per_token), rows):
        turns = np.outer(turns_per_token[start:start + rows], r)  # (rows, n_distances)
        turns -= np.floor(turns)
        turns *= n_bins
        np.floor(turns, out=turns)
        np.minimum(turns, n_bins - 1, out=turns)
        out[start:start + rows] = turns
    return out


def _histogram(index: np.ndarray, weights: np.ndarray, n_bins: int) -> np.ndarray:
    """``H[i, b] = Σ_r weights[r] · [index[i, r] == b]``: (d/2, n_bins), one bincount per pair."""
    keep = np.flatnonzero(weights)
    if len(keep) == index.shape[1]:
        keep = slice(None)  # every distance: no copy
    w = np.asarray(weights, dtype=np.float64)[keep]
    return np.stack([np.bincount(row[keep], weights=w, minlength=n_bins) for row in index])


@dataclass(frozen=True)
class PhaseCoverage:
    """Which rotation angles a set of trained relative distances exercises, per rotary pair.

    Cells are (pair i, phase bin b) with ``n_bins`` equal bins of ``[0, 2π)`` (see
    :func:`phase_index`). A length-L input *needs* cell (i, b) when some distance ``r in [0, L)``
    has its angle ``r θ'_i`` there; the training *exercises* it when some trained distance does.
    Resolution: a pair turning less than ``1 / n_bins`` of a circle within L has all its distances
    in one cell, so its rate is an average over all of [0, L); raise ``n_bins`` to resolve it.
    """

    method: str  # sampler name, or "pre-training"
    n_bins: int  # phase bins of [0, 2π)
    train_len: int  # N
    target_len: int  # L
    needed: np.ndarray  # (d/2, n_bins) int64: distances r in [0, L) whose angle r θ'_i is in the cell
    trained: np.ndarray  # (d/2, n_bins) float64: Σ over trained distances in the cell of their frequency
    distance_edges: np.ndarray  # (D + 1,) int64 distance-bin edges over [0, L)
    familiar: np.ndarray  # (d/2, D): fraction of distances in the bin whose cell (i, b(r)) is exercised
    rate_map: np.ndarray  # (d/2, D): mean over distances in the bin of the rate of the cell (i, b(r))

    @property
    def exercised(self) -> np.ndarray:
        """(d/2, n_bins) bool: some trained distance has its angle in the cell."""
        return self.trained > 0

    @property
    def unseen(self) -> np.ndarray:
        """(d/2, n_bins) bool: needed at length L, never exercised."""
        return (self.needed > 0) & ~self.exercised

    @property
    def rate(self) -> np.ndarray:
        """(d/2, n_bins) ``trained / needed``: the mean, over the distances r < L whose angle lies in the
        cell, of the fraction of samples that train r (how often per sample fine-tuning shows the
        pair this angle, in [0, 1] for a sampler); NaN where the cell is not needed."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.needed > 0, self.trained / self.needed, np.nan)

    def rate_in(self, pairs, lo: int, hi: int) -> float:
        """Mean of ``rate_map`` over the pairs selected by ``pairs`` ((d/2,) bool) and the distance bins
        whose centre lies in ``[lo, hi)``: how often per sample those pairs see, at those distances,
        an angle fine-tuning produced."""
        pairs = np.asarray(pairs, dtype=bool)
        centers = (self.distance_edges[:-1] + self.distance_edges[1:] - 1) / 2
        cols = (centers >= lo) & (centers < hi)
        if pairs.shape != (self.rate_map.shape[0],) or not pairs.any() or not cols.any():
            raise ValueError(f"rate_in needs at least one pair (a (d/2,) = ({self.rate_map.shape[0]},) bool mask) "
                             f"and one distance bin in [lo, hi) = [{lo}, {hi})")
        return float(self.rate_map[np.ix_(pairs, cols)].mean())

    @property
    def covered_fraction(self) -> np.ndarray:
        """(d/2,): exercised needed cells / needed cells, per pair."""
        need = self.needed > 0
        return (need & self.exercised).sum(axis=1) / need.sum(axis=1)


def coverage_bytes(n_pairs: int, big_l: int, n_bins: int, n_distance_bins: int) -> int:
    """Estimate of :func:`phase_coverage`'s working arrays in bytes: the (d/2, L) phase cells (int32,
    their int64 flat copy and a float64 block) and the (d/2, n_bins, D) per-bin counts (int64 + float64,
    and the einsum's operands)."""
    return n_pairs * big_l * (4 + 8 + 8) + n_pairs * n_bins * n_distance_bins * (8 + 8 + 8)


@functools.lru_cache(maxsize=2)
def _cells(inv_freq_bytes: bytes, big_l: int, n_bins: int, n_distance_bins: int):
    """What every method of one scaling shares, cached read-only (keyed by the float64 bytes of θ'):
    the phase cell of every (pair, r < L) (d/2, L), the needed counts (d/2, n_bins), the distance-bin
    edges (D + 1,) and ``per_bin[i, b, j]`` = #{r in distance bin j : cell(i, r) = b} (d/2, n_bins, D)."""
    index = phase_index(np.frombuffer(inv_freq_bytes, dtype=np.float64), big_l, n_bins)  # (d/2, L)
    n_pairs = index.shape[0]
    needed = _histogram(index, np.ones(big_l), n_bins).astype(np.int64)
    edges = np.linspace(0, big_l, n_distance_bins + 1).round().astype(np.int64)
    distance_bin = np.repeat(np.arange(n_distance_bins), np.diff(edges))  # (L,)
    dtype = np.int32 if n_pairs * n_bins * n_distance_bins < 2**31 else np.int64
    flat = index.astype(dtype)  # ((i * n_bins + cell) * D + distance bin), in place: three cheap passes
    flat += (np.arange(n_pairs, dtype=dtype) * n_bins)[:, None]
    flat *= n_distance_bins
    flat += distance_bin.astype(dtype)[None, :]
    per_bin = np.bincount(flat.ravel(), minlength=n_pairs * n_bins * n_distance_bins).reshape(
        n_pairs, n_bins, n_distance_bins).astype(np.float64)
    for arr in (index, needed, edges, per_bin):
        arr.setflags(write=False)
    return index, needed, edges, per_bin


def phase_coverage(spectrum: RopeSpectrum, frequency, *, method: str = "", n_bins: int = 64,
                   n_distance_bins: int = 256, trained_inv_freq=None) -> PhaseCoverage:
    """Cells (pair, phase) exercised by the trained distances of a sampler vs the cells L needs.

    ``frequency``: (L,) per distance ``r in [0, L)``, the fraction of training samples whose
    ``D_r`` contains r (:func:`creamviz.coverage.distance_frequency`, or
    ``distance_counts / n``); ``L`` must be ``spectrum.target_len``. Angles use the scaled θ'
    (``trained_inv_freq`` overrides it for the trained side: the pre-training reference uses θ).

    - ``needed[i, b]``: how many distances ``r in [0, L)`` have ``r θ'_i`` in bin b;
    - ``trained[i, b] = Σ_{r: bin(r θ_i) = b} frequency[r]``: trained distances per sample in
      the cell (a cell is *exercised* when it is > 0);
    - ``familiar[i, j]``: over the distances r of distance bin j (``n_distance_bins`` equal bins of
      [0, L)), the fraction whose needed cell ``(i, bin(r θ'_i))`` is exercised — the
      distance × dimension view: where a length-L input presents a pair with an angle the training
      never produced;
    - ``rate_map[i, j]``: over the same distances, the mean of ``rate[i, bin(r θ'_i)]`` (see
      :attr:`PhaseCoverage.rate`): how often per sample training shows pair i the angle a length-L
      input shows it at distance r. A pair that turns many times within L collects distances from
      all of [0, L) in every cell (its rate is the average distance frequency everywhere); a pair
      that turns less than once maps each distance to its own cell (its rate follows the
      frequency of the distances near r).
    """
    frequency = np.asarray(frequency, dtype=np.float64)
    big_l = spectrum.target_len
    if frequency.shape != (big_l,):
        raise ValueError(f"frequency must have shape (L,) = ({big_l},) for target_len L = {big_l}, got {frequency.shape}")
    if np.any(frequency < 0) or not np.all(np.isfinite(frequency)):
        raise ValueError("frequency must be finite and >= 0")
    n_bins = check_int("n_bins", n_bins, 1)
    n_distance_bins = min(check_int("n_distance_bins", n_distance_bins, 1), big_l)
    check_size(f"phase_coverage at L={big_l}, n_bins={n_bins}, n_distance_bins={n_distance_bins}",
               coverage_bytes(len(spectrum.inv_freq), big_l, n_bins, n_distance_bins), MAX_COVERAGE_BYTES,
               unit="bytes", hint=" (lower target_len, n_bins or n_distance_bins)")
    index, needed, edges, per_bin = _cells(spectrum.inv_freq.tobytes(), big_l, n_bins, n_distance_bins)
    if trained_inv_freq is None:
        trained = _histogram(index, frequency, n_bins)
    else:
        last = int(np.flatnonzero(frequency)[-1]) + 1 if frequency.any() else 1
        trained = _histogram(phase_index(trained_inv_freq, last, n_bins), frequency[:last], n_bins)
    widths = np.diff(edges)[None, :]
    # sum over the distances of a bin = sum over cells of (distances of the bin in the cell) x value
    familiar = np.einsum("ibj,ib->ij", per_bin, (trained > 0).astype(np.float64)) / widths
    rate = trained / np.maximum(needed, 1)  # every cell some r < L lands in has needed >= 1
    rate_map = np.einsum("ibj,ib->ij", per_bin, rate) / widths
    return PhaseCoverage(method=method, n_bins=n_bins, train_len=spectrum.train_len, target_len=big_l,
                         needed=needed.copy(), trained=trained, distance_edges=edges.copy(), familiar=familiar, rate_map=rate_map)


def pretraining_coverage(spectrum: RopeSpectrum, *, n_bins: int = 64, n_distance_bins: int = 256) -> PhaseCoverage:
    """The reference: cells pre-training produced (distances r < N, unscaled θ) against the cells a
    length-L input needs under the scaling (r < L, θ'). ``method = "pre-training"``."""
    frequency = np.zeros(spectrum.target_len)
    frequency[:min(spectrum.train_len, spectrum.target_len)] = 1.0
    return phase_coverage(spectrum, frequency, method="pre-training", n_bins=n_bins,
                          n_distance_bins=n_distance_bins, trained_inv_freq=spectrum.base_inv_freq)


def sampler_distance_frequency(sampler, n_samples: int, seed: int = 0, *, max_ids: int = 400_000) -> np.ndarray:
    """Per distance ``r in [0, L)``: the fraction of ``n_samples`` samples of ``sampler`` whose
    ``D_r`` contains r, (L,). Samplers with segments use the closed form; RandPos (raw ids, FFT
    path) uses at most ``max_ids / N`` samples."""
    from creamviz import coverage

    n_samples = check_int("n_samples", n_samples, 1)
    if sampler.has_segments:
        return coverage.distance_frequency(sampler.sample(n_samples, seed=seed))
    n = max(1, min(n_samples, max_ids // sampler.train_len))
    return coverage.distance_frequency(sampler.position_ids(n, seed=seed), sampler.target_len)


# --------------------------------------------------------------------------- everything for one scaling
@dataclass(frozen=True)
class RopeOverview:
    """What the RoPE figures show for one scaling and a set of samplers."""

    spectrum: RopeSpectrum
    decay: dict  # name -> (distances (R,), bound (R,)): "pre-trained θ" and "<scaling> θ'"
    coverages: dict  # "pre-training" and each method -> PhaseCoverage
    n_samples: dict  # method -> samples behind its distance frequencies (None: frequencies given)


def rope_overview(spectrum: RopeSpectrum, methods=("cream", "pose", "randpos", "contiguous"), *,
                  n_samples: int = 2000, seed: int = 0, n_bins: int = 64, n_distance_bins: int = 256,
                  decay_points: int = 1024, sampler_params: dict | None = None,
                  frequencies: dict | None = None) -> RopeOverview:
    """Decay curves (pre-trained θ, scaled θ' with its attention factor) up to L and the phase
    coverage of pre-training and of each method's trained distances (``n_samples`` samples of
    ``make_sampler(method, train_len=N, target_len=L, **sampler_params.get(method, {}))`` drawn
    with ``seed``; RandPos fewer, see :func:`sampler_distance_frequency`). ``frequencies``: method
    -> precomputed (L,) distance frequencies (skips the sampling for those)."""
    from creamviz.samplers import make_sampler

    big_n, big_l = spectrum.train_len, spectrum.target_len
    n_bins = check_int("n_bins", n_bins, 1)
    n_distance_bins = min(check_int("n_distance_bins", n_distance_bins, 1), big_l)
    check_size(f"rope_overview at L={big_l}", coverage_bytes(len(spectrum.inv_freq), big_l, n_bins, n_distance_bins),
               MAX_COVERAGE_BYTES, unit="bytes", hint=" (lower target_len, n_bins or n_distance_bins)")
    decay = decay_curves(spectrum, decay_points)
    coverages = {"pre-training": pretraining_coverage(spectrum, n_bins=n_bins, n_distance_bins=n_distance_bins)}
    used = {}
    frequencies = dict(frequencies or {})
    for method in methods:
        sampler = make_sampler(method, train_len=big_n, target_len=big_l, **(sampler_params or {}).get(method, {}))
        if method in frequencies:
            used[method] = None  # given by the caller
        else:
            frequencies[method] = sampler_distance_frequency(sampler, n_samples, seed)
            used[method] = n_samples if sampler.has_segments else max(1, min(n_samples, 400_000 // big_n))
        coverages[method] = phase_coverage(spectrum, frequencies[method], method=method, n_bins=n_bins,
                                           n_distance_bins=n_distance_bins)
    return RopeOverview(spectrum=spectrum, decay=decay, coverages=coverages, n_samples=used)
