"""Per-GPU training memory for data parallel, ZeRO and FSDP: choose a set-up before launching.

Model states follow the ZeRO paper (Rajbhandari et al., 2020): with Ψ parameters, mixed-precision
Adam keeps 2Ψ bytes of 16-bit parameters, 2Ψ of 16-bit gradients and KΨ of optimizer state
(K = 12: fp32 master weights, momentum and variance). Over N_d data-parallel GPUs:

=====================  ==================  ===============  =====================
strategy               parameters          gradients        optimizer state
=====================  ==================  ===============  =====================
``ddp``                2Ψ                  2Ψ               KΨ
``zero1``              2Ψ                  2Ψ               KΨ / N_d
``zero1_offload``      2Ψ                  2Ψ               on the CPU (KΨ / N_d per rank)
``zero2``              2Ψ                  2Ψ / N_d         KΨ / N_d
``zero3``              2Ψ / N_d            2Ψ / N_d         KΨ / N_d
``fsdp_full_shard``    4Ψ / N_d (fp32)     4Ψ / N_d         8Ψ / N_d (same 16Ψ / N_d in all)
=====================  ==================  ===============  =====================

``zero3`` and ``fsdp_full_shard`` also hold the gathered 16-bit weights of the layers being computed
(counted as two decoder layers: the current one and the prefetched next one). ``precision="fp32"``
(no mixed precision): 4Ψ + 4Ψ + 8Ψ.

Activations (16-bit) follow Korthikanti et al. (2022), "Reducing activation recomputation in large
transformer models": ``s·b·h·(34 + 5·a·s/h)`` bytes per layer for sequence length s, micro-batch b,
hidden size h and a heads; with a fused attention kernel (SDPA / FlashAttention) the ``5·a·s/h`` term of
the stored attention scores is gone. With gradient checkpointing only each layer's input (``2·s·b·h``)
is kept, plus one layer's activations while it is recomputed. The loss adds the logits:
``s·b·V·(2 + 4 + 4)`` bytes (16-bit logits, their fp32 copy for the loss and the saved log-softmax).
These are estimates (temporary buffers, allocator fragmentation and the CUDA context are not
counted); measure before trusting the last 10 %.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from creamviz.validation import check_bool, check_choice, check_int, check_real

__all__ = ["GB", "LLAMA2_7B", "ModelShape", "STRATEGIES", "activation_bytes", "memory_table",
           "model_state_bytes", "per_gpu_memory"]

GB = 1e9  # the ZeRO paper's unit
STRATEGIES = ("ddp", "zero1", "zero1_offload", "zero2", "zero3", "fsdp_full_shard")
_LABELS = {"ddp": "DDP (plain data parallel)", "zero1": "ZeRO-1", "zero1_offload": "ZeRO-1 + optimizer offload (paper)",
           "zero2": "ZeRO-2", "zero3": "ZeRO-3", "fsdp_full_shard": "FSDP full shard"}


@dataclass(frozen=True)
class ModelShape:
    """What the memory of a decoder-only transformer depends on."""

    n_params: float  # Ψ, parameter count
    hidden: int  # h, model width
    layers: int  # decoder layers
    heads: int  # a, attention heads
    vocab: int  # V, vocabulary size
    name: str = ""  # for tables

    def __post_init__(self) -> None:
        check_real("n_params", self.n_params, 1)
        for field_name in ("hidden", "layers", "heads", "vocab"):
            check_int(field_name, getattr(self, field_name), 1)
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} must be a multiple of heads={self.heads}")


LLAMA2_7B = ModelShape(n_params=6_738_415_616, hidden=4096, layers=32, heads=32, vocab=32000, name="Llama-2-7B")


def model_state_bytes(n_params: float, strategy: str, world_size: int, *, precision: str = "mixed",
                      optimizer_bytes: float | None = None, layer_params: float = 0.0) -> dict:
    """Bytes per GPU (and per rank on the CPU) of parameters, gradients and optimizer state.

    ``n_params`` Ψ; ``world_size`` N_d data-parallel GPUs; ``precision`` "mixed" (16-bit compute,
    fp32 master weights) or "fp32"; ``optimizer_bytes`` K per parameter (default 12 for mixed
    Adam, 8 for fp32 Adam); ``layer_params``: parameters of one decoder layer (the gathered-weights
    buffer of ZeRO-3 / FSDP, two layers in 16-bit). Returns ``{"params", "grads", "optimizer",
    "gathered", "gpu", "cpu"}`` in bytes.
    """
    check_real("n_params", n_params, 1)
    check_int("world_size", world_size, 1)
    check_real("layer_params", layer_params, 0)
    check_choice("strategy", strategy, STRATEGIES)
    check_choice("precision", precision, ("mixed", "fp32"))
    w = 2.0 if precision == "mixed" else 4.0  # bytes of a compute weight / gradient
    k = (12.0 if precision == "mixed" else 8.0) if optimizer_bytes is None else \
        check_real("optimizer_bytes", optimizer_bytes, 0)
    psi, nd = float(n_params), int(world_size)
    params, grads, opt, cpu, gathered = w * psi, w * psi, k * psi, 0.0, 0.0
    if strategy == "zero1":
        opt = k * psi / nd
    elif strategy == "zero1_offload":
        opt, cpu = 0.0, k * psi / nd
    elif strategy == "zero2":
        grads, opt = w * psi / nd, k * psi / nd
    elif strategy == "zero3":
        params, grads, opt = w * psi / nd, w * psi / nd, k * psi / nd
        gathered = 2 * w * layer_params
    elif strategy == "fsdp_full_shard":  # fp32 sharded params + fp32 grads + the rest of the state
        total = (2 * w + k) * psi / nd
        params, grads = 4.0 * psi / nd, 4.0 * psi / nd
        opt = total - params - grads
        gathered = 2 * w * layer_params
    gpu = params + grads + opt + gathered
    return {"params": params, "grads": grads, "optimizer": opt, "gathered": gathered, "gpu": gpu, "cpu": cpu}


def activation_bytes(shape: ModelShape, seq_len: int, batch: int, *, checkpointing: bool,
                     fused_attention: bool = True, dtype_bytes: int = 2) -> dict:
    """Activation bytes per GPU for one micro-batch (Korthikanti et al. 2022, see the module doc).

    Returns ``{"layers", "logits", "total"}``: ``layers`` = every layer's stored activations, or
    with ``checkpointing`` each layer's input plus one layer recomputed; ``logits`` =
    ``s·b·V·(dtype_bytes + 8)``.
    """
    if not isinstance(shape, ModelShape):
        raise ValueError(f"shape must be a ModelShape, got {type(shape).__name__}")
    check_int("seq_len", seq_len, 1)
    check_int("batch", batch, 1)
    check_bool("checkpointing", checkpointing)
    check_bool("fused_attention", fused_attention)
    check_choice("dtype_bytes", dtype_bytes, (2, 4))
    s, b, h, a = seq_len, batch, shape.hidden, shape.heads
    scale = dtype_bytes / 2  # the formula counts 16-bit values
    per_layer = s * b * h * (34 + (0 if fused_attention else 5 * a * s / h)) * scale
    if checkpointing:
        layers = shape.layers * dtype_bytes * s * b * h + per_layer
    else:
        layers = shape.layers * per_layer
    logits = s * b * shape.vocab * (dtype_bytes + 8)
    return {"layers": float(layers), "logits": float(logits), "total": float(layers + logits)}


def per_gpu_memory(shape: ModelShape, *, strategy: str, world_size: int, seq_len: int, batch: int,
                   checkpointing: bool = True, precision: str = "mixed",
                   optimizer_bytes: float | None = None) -> dict:
    """Model states (:func:`model_state_bytes`) + activations (:func:`activation_bytes`) per GPU, in
    bytes: ``{"strategy", "params", "grads", "optimizer", "gathered", "activations", "gpu", "cpu"}``."""
    embed = shape.vocab * shape.hidden
    layer_params = max(0.0, (shape.n_params - 2 * embed) / shape.layers)
    states = model_state_bytes(shape.n_params, strategy, world_size, precision=precision,
                               optimizer_bytes=optimizer_bytes, layer_params=layer_params)
    act = activation_bytes(shape, seq_len, batch, checkpointing=checkpointing,
                           dtype_bytes=2 if precision == "mixed" else 4)
    return {"strategy": strategy, **states, "activations": act["total"],
            "gpu": states["gpu"] + act["total"]}


def memory_table(shape: ModelShape = LLAMA2_7B, *, world_size: int = 2, seq_len: int = 4096, batch: int = 16,
                 checkpointing: bool = True, precision: str = "mixed", gpu_gb: float = 80.0,
                 strategies=("ddp", "zero1_offload", "zero2", "fsdp_full_shard", "zero3")) -> str:
    """A Markdown table of :func:`per_gpu_memory` (GB = 1e9 bytes) for each strategy, with whether it
    fits a ``gpu_gb`` GPU. Defaults: the paper's setting (Llama-2-7B, N = 4096, 16 windows per GPU,
    2 GPUs, bf16, gradient checkpointing)."""
    head = (f"{shape.name or 'model'} (Ψ = {shape.n_params / 1e9:.2f} B), sequence {seq_len}, micro-batch {batch} "
            f"per GPU, {world_size} GPUs, {precision} precision, gradient checkpointing "
            f"{'on' if checkpointing else 'off'}")
    check_real("gpu_gb", gpu_gb, 0, low_open=True)
    for name in strategies:
        check_choice("strategies", name, STRATEGIES)
    rows = [head, "",
            "| strategy | params | grads | optimizer | activations | GPU total | CPU per rank | fits "
            f"{gpu_gb:g} GB |", "|---|---|---|---|---|---|---|---|"]
    for name in strategies:
        m = per_gpu_memory(shape, strategy=name, world_size=world_size, seq_len=seq_len, batch=batch,
                           checkpointing=checkpointing, precision=precision)
        gathered = f" + {m['gathered'] / GB:.1f}" if m["gathered"] else ""
        rows.append(f"| {_LABELS[name]} | {m['params'] / GB:.1f}{gathered} | {m['grads'] / GB:.1f} | "
                    f"{m['optimizer'] / GB:.1f} | {m['activations'] / GB:.1f} | **{m['gpu'] / GB:.1f}** | "
                    f"{m['cpu'] / GB:.1f} | {'yes' if m['gpu'] <= gpu_gb * GB else 'no'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """``python -m creamviz.memory [--world-size 2 --seq-len 4096 --batch 16 --no-checkpointing]``:
    print the table for Llama-2-7B (the paper's model) or for ``--params/--hidden/--layers/...``."""
    import argparse

    d = asdict(LLAMA2_7B)
    p = argparse.ArgumentParser(prog="python -m creamviz.memory", description=main.__doc__.split("\n")[0])
    p.add_argument("--params", type=float, default=d["n_params"], help="parameter count Ψ")
    p.add_argument("--hidden", type=int, default=d["hidden"])
    p.add_argument("--layers", type=int, default=d["layers"])
    p.add_argument("--heads", type=int, default=d["heads"])
    p.add_argument("--vocab", type=int, default=d["vocab"])
    p.add_argument("--name", default=d["name"])
    p.add_argument("--world-size", type=int, default=2)
    p.add_argument("--seq-len", type=int, default=4096)
    p.add_argument("--batch", type=int, default=16, help="micro-batch per GPU")
    p.add_argument("--no-checkpointing", action="store_true")
    p.add_argument("--fp32", action="store_true", help="no mixed precision")
    p.add_argument("--gpu-gb", type=float, default=80.0)
    ns = p.parse_args(argv)
    try:
        shape = ModelShape(ns.params, ns.hidden, ns.layers, ns.heads, ns.vocab, ns.name)
        table = memory_table(shape, world_size=ns.world_size, seq_len=ns.seq_len, batch=ns.batch,
                             checkpointing=not ns.no_checkpointing, precision="fp32" if ns.fp32 else "mixed",
                             gpu_gb=ns.gpu_gb)
    except ValueError as err:  # one line naming the flag's value and range, no traceback
        p.error(str(err))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
