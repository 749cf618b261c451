"""LoRA fine-tuning through ``peft``: the configuration, and apply / save / load / merge.

LoRA (Hu et al. 2021) freezes a weight W and trains a low-rank update, ``W x + (alpha / r) B A x``
with ``A`` (r x d_in), ``B`` (d_out x r), ``B = 0`` at the start, so the adapted model starts as the
base model. LongLoRA (Chen et al. 2024, arXiv 2309.12307) found that for context extension LoRA on
the attention projections alone is not enough, and also trains the embeddings and the normalisation
layers ("LoRA+"): ``LoraSettings(train_embeddings_and_norms=True)`` does that (those modules are
trained in full and saved with the adapter).

Adapters are saved by ``peft`` as ``adapter_model.safetensors`` + ``adapter_config.json`` (a
training run puts them in its ``final/`` and ``checkpoint-*/`` directories);
``creamviz.models.load_model(name, adapter=DIR, merge=False)`` loads one onto its base model.
"""

from __future__ import annotations

import pathlib
import warnings
from dataclasses import asdict, dataclass, field

import torch

from creamviz.validation import check_bool, check_int, check_real

__all__ = ["LoraSettings", "ADAPTER_FILE", "ADAPTER_CONFIG", "EMBEDDING_AND_NORM_MODULES", "apply_lora",
           "save_adapter", "load_adapter", "adapter_base", "merge_adapter", "is_adapter_dir", "trainable_parameters"]

ADAPTER_FILE = "adapter_model.safetensors"  # peft's file names
ADAPTER_CONFIG = "adapter_config.json"
EMBEDDING_AND_NORM_MODULES = ("embed_tokens", "input_layernorm", "post_attention_layernorm", "norm")  # LongLoRA's extra trainables (Llama names)
ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass
class LoraSettings:
    """A LoRA adapter of rank r on ``target_modules`` (Llama module names)."""

    r: int = 8  # rank of the update B A
    alpha: float = 16.0  # the update is scaled by alpha / r
    target_modules: tuple[str, ...] = ATTENTION_MODULES  # LongLoRA's choice: the attention projections
    dropout: float = 0.0  # dropout on the adapter's input (0 keeps a resumed run exact)
    train_embeddings_and_norms: bool = False  # LongLoRA's "LoRA+": also train embeddings and norms in full
    seed: int = 0  # seeds the initialisation of A (B starts at 0)
    modules_to_save: tuple[str, ...] = field(default=(), repr=False)  # extra modules trained in full

    def validate(self) -> LoraSettings:
        check_int("r", self.r, low=1)
        check_real("alpha", self.alpha, low=0.0, low_open=True)
        check_real("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        check_bool("train_embeddings_and_norms", self.train_embeddings_and_norms)
        check_int("seed", self.seed, low=0, high=2**63 - 1)
        targets = tuple(self.target_modules) if not isinstance(self.target_modules, str) else ()
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise ValueError(f"target_modules={self.target_modules!r} must be a non-empty sequence of module names, "
                             f"e.g. {list(ATTENTION_MODULES)}")
        return self

    def peft_config(self):
        """The ``peft.LoraConfig`` of these settings."""
        from peft import LoraConfig, TaskType

        extra = list(self.modules_to_save) + (list(EMBEDDING_AND_NORM_MODULES) if self.train_embeddings_and_norms else [])
        return LoraConfig(task_type=TaskType.CAUSAL_LM, r=self.r, lora_alpha=self.alpha,
                          target_modules=list(self.target_modules), lora_dropout=self.dropout, bias="none",
                          modules_to_save=extra or None, ensure_weight_tying=bool(extra))

    def record(self) -> dict:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        d["modules_to_save"] = list(self.modules_to_save)
        return d


def _check_module_names(model, settings: LoraSettings) -> None:
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in settings.target_modules if t not in names]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise ValueError(f"target_modules {missing} are not modules of {type(model).__name__}; valid: {linear}")


def apply_lora(model, settings: LoraSettings | None = None):
    """``model`` wrapped as a ``peft.PeftModel`` with a fresh adapter: only the adapter (and, with
    ``train_embeddings_and_norms``, the embeddings and norms) require grad. The initialisation of A
    is seeded by ``settings.seed`` without touching the global RNG; B = 0, so the logits are the
    base model's until training moves B."""
    from peft import get_peft_model

    settings = (settings or LoraSettings()).validate()
    _check_module_names(model, settings)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        torch.manual_seed(settings.seed)
        return get_peft_model(model, settings.peft_config())


def is_adapter_dir(path) -> bool:
    """True when ``path`` holds a saved adapter (peft's config and safetensors weights)."""
    p = pathlib.Path(path)
    return (p / ADAPTER_CONFIG).is_file() and (p / ADAPTER_FILE).is_file()


def adapter_base(path) -> tuple[str, str | None, float | None]:
    """(base model, rope, factor) an adapter was trained on, from its LoRA run's records: the run
    metadata beside a ``final/`` adapter, or the run's config beside a ``checkpoint-*``."""
    import json

    from creamviz.training import CONFIG_FILE, RUN_METADATA

    p = pathlib.Path(path)
    meta, config = p / RUN_METADATA, p.parent / CONFIG_FILE
    if meta.is_file():
        m = json.loads(meta.read_text())
        rope = m["rope"]["type"]
        return m["base_model"], None if rope == "none" else rope, m["rope"]["factor"]
    if config.is_file():
        from creamviz.training import TrainConfig

        c = TrainConfig(**json.loads(config.read_text()))
        return c.model, None if c.rope == "none" else c.rope, c.rope_factor
    raise ValueError(f"adapter {str(path)!r} has no run records ({RUN_METADATA} or ../{CONFIG_FILE}); "
                     "load it with load_model(base, rope=..., factor=..., adapter=path)")


def save_adapter(model, out) -> pathlib.Path:
    """Save the adapter of a ``PeftModel`` (safetensors + config) into directory ``out``."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        raise ValueError(f"model must be a peft.PeftModel (apply_lora), got {type(model).__name__}")
    out = pathlib.Path(out)
    model.save_pretrained(str(out), safe_serialization=True)
    return out


def load_adapter(model, adapter, *, merge: bool = False, trainable: bool = False):
    """The base ``model`` with the adapter saved in directory ``adapter``: a ``PeftModel``, or with
    ``merge`` the plain model with ``W + (alpha / r) B A`` folded into its weights (same logits,
    no adapter overhead). ``trainable`` keeps the adapter's parameters trainable (to continue
    training it)."""
    from peft import PeftModel

    check_bool("merge", merge)
    p = pathlib.Path(adapter)
    if not is_adapter_dir(p):
        raise ValueError(f"adapter={str(adapter)!r} holds no adapter; valid: a directory with {ADAPTER_CONFIG} and "
                         f"{ADAPTER_FILE} (a LoRA run's final/ or checkpoint-*/)")
    from creamviz.models import check_safetensors_file

    check_safetensors_file(p / ADAPTER_FILE)
    peft_model = PeftModel.from_pretrained(model, str(p), is_trainable=trainable)
    return merge_adapter(peft_model) if merge else peft_model


def merge_adapter(model):
    """Fold the adapter of a ``PeftModel`` into the base weights; returns the plain model."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        raise ValueError(f"model must be a peft.PeftModel, got {type(model).__name__}")
    return model.merge_and_unload()


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
