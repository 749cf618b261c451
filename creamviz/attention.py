"""Attention maps of a Llama-architecture model at long lengths, in bounded memory.

"Did CREAM make the model look at the middle?" is answered by looking at the attention
probabilities ``softmax(q k^T / sqrt(d))`` of the model at its target length L. Materialising them
(``output_attentions=True``) costs layers x heads x T^2 floats: 4 GiB for the tiny model at
T = 8192, 1 TiB for a 7B at 32K. :func:`attention_maps` instead

1. runs ONE forward pass with PyTorch SDPA attention (no T x T tensor) and, through forward
   pre-hooks on every ``self_attn`` module, captures exactly what the model feeds its attention:
   the post-norm hidden states and the ``(cos, sin)`` of the model's own rotary embedding module
   (so linear / YaRN / dynamic RoPE scaling and YaRN's attention temperature are the model's);
2. inside each hook, re-computes that layer's queries and keys with the layer's own ``q_proj`` /
   ``k_proj`` (and ``q_norm`` / ``k_norm`` where a model has them), the model's own
   ``apply_rotary_pos_emb`` and the GQA grouping, then the causal softmax in query chunks of
   bounded size, pooling each chunk at once into ``pool x pool`` blocks (mean or max);
3. stops the forward pass after the last requested layer.

Peak extra memory is one query chunk's scores (``max_chunk_bytes``) plus the pooled output,
whatever T. The causal mask is by token index (as in the model), whatever the position ids:
CREAM / PoSE ids with big jumps change the rotary phases only.

:class:`AttentionMaps` also keeps the attention that the final query positions (the question of a
retrieval prompt) pay to every key, from which the Lost-in-the-Middle depth profile, the mass on
the head / middle / tail thirds of the context, and the mass on any span (a needle) follow.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from creamviz.attention_result import (  # re-exported: the containers live torch-free
    AttentionMaps,
    NeedleSweep,
    TokenText,
    _check_indices,
    pool_boundaries,
)
from creamviz.validation import check_int

__all__ = ["AttentionMaps", "NeedleSweep", "PromptSpans", "TokenText", "attention_maps", "needle_sweep",
           "prompt_spans", "prompt_token_text", "token_text", "pool_boundaries", "pool_matrix", "REDUCES"]

REDUCES = ("mean", "max")  # block reductions of the pooled maps
MAX_POOLED_BYTES = 1 << 30  # layers x heads x P x P float64 of the pooled result (1 GiB)


def pool_matrix(probs: np.ndarray | torch.Tensor, boundaries: np.ndarray, reduce: str = "mean") -> np.ndarray:
    """Reference pooling of full attention matrices ``probs`` (..., T, T) into (..., P, P) blocks
    (brute force, for tests and the eager baseline; needs the whole T x T)."""
    if reduce not in REDUCES:
        raise ValueError(f"reduce={reduce!r} is not valid; valid: {REDUCES}")
    a = probs.detach().to(torch.float64).numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs, float)
    b = np.asarray(boundaries)
    P = len(b) - 1
    out = np.empty(a.shape[:-2] + (P, P))
    for i in range(P):
        for j in range(P):
            block = a[..., b[i]:b[i + 1], b[j]:b[j + 1]]
            out[..., i, j] = block.mean(axis=(-2, -1)) if reduce == "mean" else block.max(axis=(-2, -1))
    return out


# --------------------------------------------------------------------------- per-layer computation
def _rope(attn: torch.nn.Module, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (h, C, d) by the model's own ``apply_rotary_pos_emb`` with cos / sin (C, d)."""
    apply_rope = sys.modules[type(attn).__module__].apply_rotary_pos_emb
    x_embed, _ = apply_rope(x[None], x[None], cos[None], sin[None])  # it rotates a (q, k) pair
    return x_embed[0]


def _layer_keys(attn: torch.nn.Module, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                heads: tuple[int, ...]) -> torch.Tensor:
    """Rotated keys (h, T, d) seen by query heads ``heads`` of one attention module.

    Follows ``LlamaAttention.forward``: ``k_proj`` -> (``k_norm`` where the model has one) -> RoPE
    with the model's ``(cos, sin)`` -> GQA: query head i reads key head ``i // num_key_value_groups``.
    ``hidden`` (T, hidden_size) post-norm input of the attention, ``cos`` / ``sin`` (T, d).
    """
    d, groups = attn.head_dim, getattr(attn, "num_key_value_groups", 1)
    k = attn.k_proj(hidden).view(hidden.shape[0], -1, d)  # (T, H_kv, d)
    if getattr(attn, "k_norm", None) is not None:
        k = attn.k_norm(k)
    k = k.transpose(0, 1)[[i // groups for i in heads]]  # (h, T, d)
    return _rope(attn, k, cos, sin)


def _layer_queries(attn: torch.nn.Module, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                   heads: tuple[int, ...]) -> torch.Tensor:
    """Rotated queries (h, C, d) of heads ``heads`` for the C rows of ``hidden`` (C, hidden_size)."""
    q = attn.q_proj(hidden).view(hidden.shape[0], -1, attn.head_dim)  # (C, H, d)
    if getattr(attn, "q_norm", None) is not None:
        q = attn.q_norm(q)
    return _rope(attn, q.transpose(0, 1)[list(heads)], cos, sin)


def _chunk_probs(q: torch.Tensor, k: torch.Tensor, q_start: int, scaling: float) -> torch.Tensor:
    """Causal attention probabilities (h, C, S) of queries ``q_start ... q_start + C - 1``
    (q: (h, C, d)) over keys ``0 ... S - 1`` (k: (h, S, d), S >= q_start + C), in float32.
    Each row sums to 1; entries of future keys (index > query index) are exactly 0."""
    C, S = q.shape[1], k.shape[1]
    if S < q_start + C:
        raise ValueError(f"keys must cover 0 ... q_start + C - 1 = {q_start + C - 1}, got S = {S}")
    scores = torch.matmul(q.float(), k.float().transpose(1, 2))  # (h, C, S)
    scores *= scaling
    # only keys q_start ... S-1 can lie in the future of a query of this chunk
    future = torch.ones(C, S - q_start, dtype=torch.bool, device=q.device).triu_(1)  # (C, S - q_start)
    scores[:, :, q_start:].masked_fill_(future, float("-inf"))
    return torch.softmax(scores, dim=-1)


class _StopForward(Exception):
    """Raised by the last hook: the rest of the forward pass is not needed."""


def _decoder_layers(model) -> torch.nn.ModuleList:
    base = model.get_decoder() if hasattr(model, "get_decoder") else model
    layers = getattr(base, "layers", None)
    if layers is None:
        raise ValueError(f"model {type(model).__name__} has no decoder .layers; expected a Llama-architecture model")
    for i, layer in enumerate(layers):
        attn = getattr(layer, "self_attn", None)
        if attn is None or not all(hasattr(attn, a) for a in ("q_proj", "k_proj", "head_dim", "scaling")):
            raise ValueError(f"layer {i} of {type(model).__name__} has no Llama-style self_attn "
                             "(q_proj, k_proj, head_dim, scaling)")
    return layers


# --------------------------------------------------------------------------- public entry point
@dataclass(frozen=True)
class _Request:
    """A validated :func:`attention_maps` request (one sequence of T tokens)."""

    ids: torch.Tensor  # (T,) token ids
    pos: torch.Tensor  # (T,) strictly increasing position ids
    layers: tuple[int, ...]  # model layer indices to compute
    heads: tuple[int, ...]  # query-head indices to compute
    pool: int  # P, pooling blocks per axis
    reduce: str  # "mean" | "max"
    query_len: int  # final positions forming the question
    depth_bins: int  # B, bins of the depth profile
    max_chunk_bytes: int  # memory for one query chunk of scores


def _check_request(model, input_ids, position_ids, layers, heads, pool, reduce, query_len, depth_bins,
                   max_chunk_bytes) -> _Request:
    """Validate every argument of :func:`attention_maps` before any computation."""
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
        raise ValueError(f"model must be a transformers model (nn.Module with .config), got {type(model).__name__}")
    config = model.config
    n_layers_model = len(_decoder_layers(model))
    n_heads_model = config.num_attention_heads

    ids = torch.as_tensor(input_ids).cpu()
    if ids.dim() == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dim() != 1 or ids.numel() < 2:
        raise ValueError(f"input_ids must have shape (T,) or (1, T) with T >= 2, got shape {tuple(ids.shape)}")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"input_ids must hold integer token ids, got dtype {ids.dtype}")
    T = ids.numel()
    vocab = getattr(config, "vocab_size", None)
    if int(ids.min()) < 0 or (vocab is not None and int(ids.max()) >= vocab):
        raise ValueError(f"input_ids must lie in [0, {vocab}), got values in [{int(ids.min())}, {int(ids.max())}]")

    if position_ids is None:
        pos = torch.arange(T)
    else:
        pos = torch.as_tensor(position_ids).cpu()
        if pos.dim() == 2 and pos.shape[0] == 1:
            pos = pos[0]
        if pos.shape != (T,):
            raise ValueError(f"position_ids must have shape ({T},) like input_ids, got {tuple(pos.shape)}")
        if pos.dtype.is_floating_point or pos.dtype == torch.bool:
            raise ValueError(f"position_ids must be integers, got dtype {pos.dtype}")
        if int(pos[0]) < 0:
            raise ValueError(f"position_ids must be >= 0, got p[0] = {int(pos[0])}")
        bad = torch.nonzero(pos[1:] <= pos[:-1])
        if len(bad):
            i = int(bad[0, 0])
            raise ValueError(f"position_ids must be strictly increasing (p[0] < ... < p[T-1]), got "
                             f"p[{i}] = {int(pos[i])} >= p[{i + 1}] = {int(pos[i + 1])}")
        pos = pos.long()
    from creamviz.models import MAX_POSITION

    if int(pos[-1]) >= MAX_POSITION:  # RoPE angles are float32 products p * inv_freq
        raise ValueError(f"position_ids reach {int(pos[-1])}; valid is below {MAX_POSITION} = 2**24, where "
                         "float32 still holds every integer position (beyond it RoPE phases are rounded)")

    layer_idx = _check_indices("layers", layers, n_layers_model)
    head_idx = _check_indices("heads", heads, n_heads_model)
    pool = min(check_int("pool", pool, low=1), T)
    pooled_bytes = len(layer_idx) * len(head_idx) * pool * pool * 8
    if pooled_bytes > MAX_POOLED_BYTES:
        raise ValueError(f"pool={pool}: the pooled maps need {len(layer_idx)} layers x {len(head_idx)} heads x "
                         f"{pool}^2 float64 = {pooled_bytes / 2**30:.1f} GiB, above the limit "
                         f"{MAX_POOLED_BYTES / 2**30:.0f} GiB; use a smaller pool or fewer layers / heads")
    if reduce not in REDUCES:
        raise ValueError(f"reduce={reduce!r} is not valid; valid: {REDUCES}")
    query_len = check_int("query_len", query_len, low=1, high=T - 1)
    context_len = T - query_len
    depth_bins = min(20, context_len) if depth_bins is None else check_int(
        "depth_bins", depth_bins, low=1, high=context_len)
    device = next(model.parameters()).device
    if max_chunk_bytes is None:
        max_chunk_bytes = 2**31 if device.type == "cuda" else 2**27
    max_chunk_bytes = check_int("max_chunk_bytes", max_chunk_bytes, low=1)

    return _Request(ids=ids, pos=pos, layers=layer_idx, heads=head_idx, pool=pool, reduce=reduce,
                    query_len=query_len, depth_bins=depth_bins, max_chunk_bytes=max_chunk_bytes)


def _pool_layer(attn: torch.nn.Module, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                req: _Request) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer's pooled attention (h, P, P) and the question's attention on every key (h, T),
    from the inputs the model feeds that layer's attention (hidden (1, T, D), cos / sin (1, T, d)).
    Query chunks of bounded size; the causal softmax of each is pooled at once."""
    T, pool, reduce, head_idx, query_len = req.ids.numel(), req.pool, req.reduce, req.heads, req.query_len
    context_len = T - query_len
    device = hidden.device
    boundaries = pool_boundaries(T, pool)
    block_of = torch.from_numpy(np.repeat(np.arange(pool), np.diff(boundaries))).to(device)  # (T,) token -> block
    block_size = T // pool if T % pool == 0 else 0  # equal blocks allow a reshape instead of a scatter
    n_h = len(head_idx)
    # rows per query chunk: scores, probs and a pooled copy ~ 3 float32 (h, C, T) tensors
    chunk_rows = max(1, min(T, req.max_chunk_bytes // (3 * 4 * n_h * T)))

    hidden, cos, sin = hidden[0], cos[0], sin[0]  # batch of one
    k = _layer_keys(attn, hidden, cos, sin, head_idx).float()  # (h, T, d), cast once
    acc = torch.zeros(n_h, pool, pool, dtype=torch.float64, device=device)  # (h, P, P) block sums / maxima
    q_acc = torch.zeros(n_h, T, dtype=torch.float64, device=device)  # (h, T) summed attention of the question
    for start in range(0, T, chunk_rows):
        stop = min(T, start + chunk_rows)
        q = _layer_queries(attn, hidden[start:stop], cos[start:stop], sin[start:stop], head_idx)  # (h, C, d)
        S = int(boundaries[np.searchsorted(boundaries, stop)])  # keys up to the block edge >= stop
        probs = _chunk_probs(q, k[:, :S], start, attn.scaling)  # (h, C, S), zero beyond the diagonal
        C, qb = stop - start, block_of[start:stop]
        if block_size:  # equal blocks: reduce a (h, C, S / bs, bs) view
            blocks = probs.view(n_h, C, S // block_size, block_size)
            by_key = blocks.sum(-1) if reduce == "mean" else blocks.amax(-1)  # (h, C, S / bs)
        elif reduce == "mean":
            by_key = torch.zeros(n_h, C, pool, device=device).index_add_(2, block_of[:S], probs)
        else:
            by_key = torch.zeros(n_h, C, pool, device=device).scatter_reduce_(
                2, block_of[:S].expand(n_h, C, S), probs, reduce="amax")  # (h, C, P)
        by_key = by_key.double()
        n_kb = by_key.shape[-1]
        if reduce == "mean":
            acc[:, :, :n_kb].index_add_(1, qb, by_key)
        else:
            acc[:, :, :n_kb].scatter_reduce_(1, qb[None, :, None].expand(n_h, C, n_kb), by_key, reduce="amax")
        if stop > context_len:  # rows of the question
            first = max(start, context_len) - start
            q_acc[:, :S] += probs[:, first:].sum(1).double()
        del probs, by_key
    if reduce == "mean":
        sizes = torch.from_numpy(np.diff(boundaries)).double().to(device)
        acc /= sizes[:, None] * sizes[None, :]
    return acc.cpu(), (q_acc / query_len).cpu()


def _run_with_layer_hooks(model, req: _Request, on_layer) -> None:
    """One forward pass (SDPA, no T x T mask) that calls ``on_layer(layer, attn, hidden, cos, sin)``
    with the inputs of each requested layer's attention and stops after the last one; hooks, the
    attention implementation and train/eval mode are restored whatever happens."""
    decoder_layers = _decoder_layers(model)
    config = model.config
    device = next(model.parameters()).device
    ids, pos, T = req.ids, req.pos, req.ids.numel()
    wanted = set(req.layers)
    last = max(req.layers)

    hooks = []

    def make_hook(layer: int):
        def hook(module, args, kwargs):
            hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
            cos, sin = kwargs["position_embeddings"] if "position_embeddings" in kwargs else args[1]
            on_layer(layer, module, hidden, cos, sin)
            if layer == last:
                raise _StopForward
        return hook

    for i in wanted:
        hooks.append(decoder_layers[i].self_attn.register_forward_pre_hook(make_hook(i), with_kwargs=True))
    was_training = model.training
    old_impl = config._attn_implementation
    try:
        model.eval()
        if old_impl != "sdpa" and hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("sdpa")  # the capture pass must not build T x T either
        try:
            # explicit all-ones mask: no "packed sequence" inference from position-id jumps, and
            # SDPA can use is_causal (no materialised mask)
            model(input_ids=ids[None].to(device), position_ids=pos[None].to(device),
                  attention_mask=torch.ones(1, T, dtype=torch.long, device=device), use_cache=False)
        except _StopForward:
            pass
    finally:
        for h in hooks:
            h.remove()
        if config._attn_implementation != old_impl and hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation(old_impl)
        model.train(was_training)


@torch.no_grad()
def attention_maps(model, input_ids, *, position_ids=None, layers=None, heads=None, pool: int = 256,
                   reduce: str = "mean", query_len: int = 1, depth_bins: int | None = None,
                   max_chunk_bytes: int | None = None, label: str = "") -> AttentionMaps:
    """Pooled attention probabilities of ``model`` on one sequence, layer by layer, in bounded memory.

    Args:
        model: a Llama-architecture causal LM (``LlamaForCausalLM`` or its base ``LlamaModel``;
            Mistral / Qwen2-style models with the same attention module work too). Its RoPE
            (``config.rope_parameters``: linear / YaRN / dynamic interpolation from N to L) is used
            as the model applies it. Sliding-window attention and logit soft-capping are not modelled.
        input_ids: (T,) or (1, T) token ids (one sequence; no padding).
        position_ids: (T,) or (1, T) strictly increasing ids (e.g. a CREAM vector with head
            ``[0, L_h)``, middle ``[P_s, P_e]``, tail ``[L - L_t, L)``); default ``0 ... T-1``.
        layers, heads: model layer / query-head indices to compute (int or sequence; None = all).
        pool: P, blocks per axis (>= 1; more than T is cut to T); blocks hold ``floor`` or
            ``ceil(T / P)`` tokens.
        reduce: "mean" (average probability of the block, future entries counted as 0) or "max".
        query_len: the final ``query_len`` positions are "the question" whose attention gives
            ``query_attention``, ``depth_profile`` and ``thirds`` (1 ... T - 1).
        depth_bins: B, bins of the depth profile over the context ``[0, T - query_len)``
            (1 ... T - query_len; default ``min(20, T - query_len)``).
        max_chunk_bytes: memory for the scores of one query chunk (float32 heads x rows x keys);
            peak extra memory is a small multiple of it. Default 128 MiB on CPU, 2 GiB on CUDA.
        label: a name kept on the result (figures use it).

    Returns:
        :class:`AttentionMaps` (numpy float64 arrays).

    Memory: one forward pass with SDPA (``is_causal``, no T x T mask), plus per hook one layer's
    keys (heads x T x d) and one chunk of scores. Never layers x heads x T^2.
    """
    req = _check_request(model, input_ids, position_ids, layers, heads, pool, reduce, query_len, depth_bins,
                         max_chunk_bytes)
    layer_idx, T, query_len, pool = req.layers, req.ids.numel(), req.query_len, req.pool
    context_len = T - query_len
    depth_bins, pos = req.depth_bins, req.pos
    boundaries = pool_boundaries(T, pool)
    pooled, query_attn = {}, {}  # layer -> (h, P, P), (h, T)

    def on_layer(layer, attn, hidden, cos, sin):
        pooled[layer], query_attn[layer] = _pool_layer(attn, hidden, cos, sin, req)

    _run_with_layer_hooks(model, req, on_layer)
    wanted = set(layer_idx)
    if set(pooled) != wanted:
        raise ValueError(f"the forward pass did not reach layers {sorted(wanted - set(pooled))}; "
                         "is this a Llama-architecture model?")

    pooled_np = np.stack([pooled[i].numpy() for i in layer_idx])  # (layers, h, P, P)
    q_attn = np.stack([query_attn[i].numpy() for i in layer_idx])  # (layers, h, T)
    depth_boundaries = pool_boundaries(context_len, depth_bins)
    third_boundaries = pool_boundaries(context_len, 3) if context_len >= 3 else np.array([0, 0, 0, context_len])
    csum = np.concatenate([np.zeros(q_attn.shape[:2] + (1,)), np.cumsum(q_attn, axis=-1)], axis=-1)

    def span_mass(b):  # mass on consecutive spans b[i] ... b[i+1]-1
        return csum[..., b[1:]] - csum[..., b[:-1]]

    return AttentionMaps(
        pooled=pooled_np, boundaries=boundaries, query_attention=q_attn,
        depth_profile=span_mass(depth_boundaries), depth_boundaries=depth_boundaries,
        thirds=span_mass(third_boundaries), third_boundaries=third_boundaries,
        query_self_mass=q_attn[..., context_len:].sum(-1),
        layers=layer_idx, heads=req.heads, position_ids=pos.numpy().copy(), query_start=context_len,
        reduce=req.reduce, label=label)


# --------------------------------------------------------------------------- prompt spans
@dataclass(frozen=True)
class PromptSpans:
    """Token spans of a retrieval prompt (indices into ``prompt_ids``; stops exclusive)."""

    needle_start: int  # first token of the relevant item (kv pair, line, pass key, needle)
    needle_stop: int  # one past its last token
    question_start: int  # first token of the question at the end of the prompt
    n_tokens: int  # T, the prompt length

    @property
    def needle(self) -> tuple[int, int]:
        """``(start, stop)`` of the relevant item, for :func:`creamviz.figures.fig_needle_attention`."""
        return self.needle_start, self.needle_stop

    @property
    def query_len(self) -> int:
        """Tokens of the question, for ``attention_maps(..., query_len=...)``."""
        return self.n_tokens - self.question_start


def prompt_spans(example, tokenizer) -> PromptSpans:
    """Where the relevant item and the question sit in a :class:`creamviz.tasks.TaskExample`.

    Relevant item: the gold ``key:value`` pair (kv), the gold ``line <id>: <number>`` (lines), the
    pass-key sentence (passkey) or the needle sentence (niah); chat tasks (``tasks.CHAT_TASKS``) give
    theirs through the tokenizer's offset mapping. Question: the text after the context
    (kv: ``<key>:``; lines: ``what is in line <id>?``; passkey / niah: the final question). Offsets
    are token counts of the prompt's text prefixes (exact for the byte tokenizer; for sub-word
    tokenizers a token straddling a boundary is counted on the side its text starts).
    """
    from creamviz import tasks

    if example.task in tasks.CHAT_TASKS:  # chat-template prompts carry their character spans
        start, stop, question = tasks.chat_token_spans(tokenizer, example)
        return PromptSpans(needle_start=start, needle_stop=stop, question_start=question,
                           n_tokens=len(example.prompt_ids))
    prompt = example.prompt
    if example.task == "kv":
        key, value = example.meta["pairs"][example.gold_index]
        needle = f"{key}:{value}"
        q_char = prompt.rindex(tasks.KV_SUFFIX) + len(tasks.KV_SUFFIX)
    elif example.task == "lines":
        body = prompt[len(tasks.LINES_PREFIX):].split("\n")
        needle = body[example.gold_index]
        q_char = prompt.rindex("what is in line")
    elif example.task == "passkey":
        needle = tasks.PASSKEY_NEEDLE.format(k=example.answer.strip())
        q_char = prompt.rindex(tasks.PASSKEY_QUERY)
    elif example.task == "niah":
        needle = tasks.NIAH_NEEDLE.format(k=example.answer.strip()).strip()
        q_char = prompt.rindex(tasks.NIAH_QUERY)
    else:
        raise ValueError(f"example.task={example.task!r} is not one of kv, lines, passkey, niah")
    n_char = prompt.find(needle)
    if n_char < 0 or n_char + len(needle) > q_char:
        raise ValueError(f"the relevant item {needle!r} is not in the context of this {example.task} prompt")

    def n_tokens(text: str) -> int:
        return len(tasks.encode(tokenizer, text))

    return PromptSpans(needle_start=n_tokens(prompt[:n_char]), needle_stop=n_tokens(prompt[:n_char + len(needle)]),
                       question_start=n_tokens(prompt[:q_char]), n_tokens=len(example.prompt_ids))


# --------------------------------------------------------------------------- token text
GOLD_NAMES = {"kv": "gold pair", "kv_uuid": "gold pair", "lines": "gold line", "passkey": "pass key",
              "passkey_chat": "pass key", "niah": "needle", "niah_chat": "needle"}  # task -> name of its relevant item


def token_text(tokenizer, input_ids, marks=()) -> TokenText:
    """The decoded text of each token of ``input_ids`` (each id decoded on its own, special tokens
    kept, so the pieces concatenate to the prompt's text) and ``marks``: ``(name, start, stop)``
    token spans to outline in the figures."""
    ids = [int(i) for i in (input_ids.tolist() if hasattr(input_ids, "tolist") else input_ids)]
    if not ids:
        raise ValueError("input_ids must not be empty")
    tokens = tuple(tokenizer.decode([i], skip_special_tokens=False) for i in ids)
    checked = []
    for mark in marks:
        name, start, stop = mark
        if not 0 <= int(start) < int(stop) <= len(ids):
            raise ValueError(f"marks: span {name!r} = ({start}, {stop}) must satisfy 0 <= start < stop <= {len(ids)}")
        checked.append((str(name), int(start), int(stop)))
    return TokenText(tokens=tokens, marks=tuple(checked))


def prompt_token_text(example, tokenizer) -> TokenText:
    """:func:`token_text` of a :class:`creamviz.tasks.TaskExample`'s prompt with its relevant item
    (named as the task calls it: "gold pair", "pass key", ...) and its question marked
    (:func:`prompt_spans`)."""
    spans = prompt_spans(example, tokenizer)
    return token_text(tokenizer, example.prompt_ids,
                      marks=((GOLD_NAMES.get(example.task, "gold"), *spans.needle),
                             ("question", spans.question_start, spans.n_tokens)))


# --------------------------------------------------------------------------- needle sweep
def needle_sweep(model, tokenizer, *, task: str = "kv", length: int, depths=(0.0, 0.25, 0.5, 0.75, 1.0),
                 seeds=(0,), layers=None, heads=None, query_len: int | None = 1, label: str = "") -> NeedleSweep:
    """Attention mass of the final query on the relevant item of ``task`` prompts of ``length``
    tokens (L), for the item at each of ``depths`` (``creamviz.tasks`` generators, one prompt per
    seed). ``query_len`` = final positions averaged (1: the token that predicts the answer's first
    token; None: the whole question of :func:`prompt_spans`).
    """
    from creamviz import tasks

    if task not in tasks.GENERATORS:
        raise ValueError(f"task={task!r} is not one of {', '.join(tasks.GENERATORS)}")
    depths = np.asarray(depths, dtype=float)
    if depths.ndim != 1 or not len(depths) or depths.min() < 0 or depths.max() > 1:
        raise ValueError(f"depths must be a non-empty sequence in [0, 1], got {depths}")
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    mass, uniform, first = [], [], None
    for depth in depths:
        row_m, row_u = [], []
        for seed in seeds:
            ex = tasks.GENERATORS[task](tokenizer, length, depth=float(depth), seed=seed)
            spans = prompt_spans(ex, tokenizer)
            q_len = spans.query_len if query_len is None else query_len
            maps = attention_maps(model, ex.prompt_ids, layers=layers, heads=heads, pool=1, query_len=q_len)
            first = first or maps
            row_m.append(maps.mass_on(*spans.needle))
            row_u.append((spans.needle_stop - spans.needle_start) / maps.query_start)
        mass.append(row_m)
        uniform.append(row_u)
    return NeedleSweep(depths=depths, mass=np.asarray(mass), uniform=np.asarray(uniform), layers=first.layers,
                       heads=first.heads, task=task, length=int(length),
                       query_len=-1 if query_len is None else int(query_len), label=label)
