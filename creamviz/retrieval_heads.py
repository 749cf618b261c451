"""Retrieval heads (Wu, Wang, Xiao, Peng, Fu 2024, "Retrieval Head Mechanistically Explains
Long-Context Factuality", arXiv 2404.15574), measured as the paper defines them, and head masking.

Retrieval score. The model answers a retrieval prompt (a needle at some depth of the context) by
greedy decoding. At each decoding step t the model emits token w_t; the query of that step is the
token before it. Head h *copies* at step t when the key it attends to most (argmax of its attention
row over the whole sequence so far) lies inside the needle span ``[s, e)`` of the prompt and that
key's token equals w_t. The head's score on one prompt is

    (number of copying steps) / (e - s)

(the paper's ``1 / (needle_end - needle_start)`` per copying step), and its retrieval score is the
mean over prompts. Heads with a score above 0.1 are the paper's retrieval heads.

Head masking. A head is switched off by zeroing its output (its slice of the input of the layer's
``o_proj``) for every token: the rest of the layer is untouched. :func:`masking_experiment` masks the
top-k heads by retrieval score and, for comparison, k heads drawn at random (seeded) from the others,
and measures retrieval as the greedy answer's exact match on the prompts.

Everything is computed from one forward pass per prompt on ``prompt + greedy answer`` (the rows that
predict the answer tokens see exactly the keys the decoding steps saw), with the model's own queries,
keys and RoPE re-computed from pre-hooks as in :mod:`creamviz.attention` (no ``T x T`` tensor).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch

from creamviz.validation import check_int

__all__ = ["RETRIEVAL_THRESHOLD", "RetrievalScores", "MaskingResult", "attention_argmax", "copy_score",
           "greedy_answer", "retrieval_scores", "mask_heads", "answer_exact", "masking_experiment",
           "retrieval_examples"]

RETRIEVAL_THRESHOLD = 0.1  # the paper's cut: heads scoring above it are retrieval heads


# --------------------------------------------------------------------------- the score itself
def copy_score(argmax: np.ndarray, prompt_ids, generated, needle: tuple[int, int]) -> np.ndarray:
    """Retrieval score of every head on one prompt, from the argmax key of each decoding step.

    ``argmax`` (layers, heads, S): the key index each head attends to most at decoding step t
    (the row that predicts ``generated[t]``); ``prompt_ids`` the prompt's T0 tokens; ``generated``
    the S emitted tokens; ``needle = (s, e)`` the needle's token span in the prompt. Returns
    (layers, heads): copying steps / (e - s).
    """
    argmax = np.asarray(argmax)
    prompt = np.asarray(prompt_ids)
    gen = np.asarray(generated)
    s, e = int(needle[0]), int(needle[1])
    if argmax.ndim != 3 or argmax.shape[-1] != len(gen):
        raise ValueError(f"argmax must have shape (layers, heads, S={len(gen)}), got {argmax.shape}")
    if not 0 <= s < e <= len(prompt):
        raise ValueError(f"needle={needle} must satisfy 0 <= start < stop <= {len(prompt)} (the prompt's tokens)")
    inside = (argmax >= s) & (argmax < e)  # (layers, heads, S)
    key_token = prompt[np.clip(argmax, 0, len(prompt) - 1)]  # token at the attended key
    copies = inside & (key_token == gen[None, None, :])
    return copies.sum(-1) / (e - s)


@torch.no_grad()
def attention_argmax(model, input_ids, rows) -> np.ndarray:
    """Index of the key that each head attends to most, for query rows ``rows`` of ``input_ids``.

    Returns (layers, heads, len(rows)) int64: ``argmax_j softmax(q_r k_j^T / sqrt(d))`` over the
    causal keys ``j <= r``, with the model's own q / k projections, norms, RoPE (as it is configured)
    and GQA. Ties resolve to the lowest index. One forward pass, no ``T x T`` tensor.
    """
    from creamviz import attention as A

    ids = torch.as_tensor(input_ids).reshape(-1)
    rows = [int(r) for r in np.atleast_1d(rows)]
    T = ids.numel()
    if not rows or min(rows) < 0 or max(rows) >= T:
        raise ValueError(f"rows must be non-empty indices in [0, {T}), got {rows}")
    req = A._check_request(model, ids, None, None, None, 1, "mean", 1, 1, None)
    rows_t = torch.tensor(rows)
    out = {}

    def on_layer(layer, attn, hidden, cos, sin):
        hidden, cos, sin = hidden[0], cos[0], sin[0]
        k = A._layer_keys(attn, hidden, cos, sin, req.heads).float()  # (h, T, d)
        q = A._layer_queries(attn, hidden[rows_t], cos[rows_t], sin[rows_t], req.heads).float()  # (h, R, d)
        scores = torch.matmul(q, k.transpose(1, 2))  # (h, R, T); the scaling does not move the argmax
        future = torch.arange(T, device=scores.device)[None, :] > rows_t.to(scores.device)[:, None]  # (R, T)
        scores.masked_fill_(future, float("-inf"))
        out[layer] = scores.argmax(-1).cpu()  # (h, R)

    A._run_with_layer_hooks(model, req, on_layer)
    return np.stack([out[i].numpy() for i in req.layers])  # (layers, heads, R)


@torch.no_grad()
def greedy_answer(model, prompt_ids, n_tokens: int) -> list[int]:
    """The model's greedy continuation of ``prompt_ids``: ``n_tokens`` tokens (no early stop)."""
    n_tokens = check_int("n_tokens", n_tokens, low=1)
    device = next(model.parameters()).device
    ids = torch.as_tensor(prompt_ids, device=device).reshape(1, -1)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                         max_new_tokens=n_tokens, min_new_tokens=n_tokens, num_beams=1)
    return [int(t) for t in out[0, ids.shape[1]:]]


def _answer_ids(tokenizer, example) -> list[int]:
    return list(tokenizer(example.answer, add_special_tokens=False)["input_ids"])


# --------------------------------------------------------------------------- over a set of prompts
@dataclass
class RetrievalScores:
    """Retrieval scores of every head of a model over ``n`` prompts."""

    scores: np.ndarray  # (layers, heads) mean retrieval score over prompts
    per_prompt: np.ndarray  # (n, layers, heads) score on each prompt
    correct: np.ndarray  # (n,) bool: the greedy answer equals the gold answer
    layers: tuple[int, ...]  # model layer indices
    heads: tuple[int, ...]  # query-head indices
    task: str  # task family of the prompts (creamviz.tasks generator name)
    length: int  # L, the prompts' token budget
    depths: tuple[float, ...]  # needle depths of the prompts
    seeds: tuple[int, ...]  # prompt seeds
    label: str = ""  # a name for figures

    def top(self, k: int) -> list[tuple[int, int]]:
        """The k highest-scoring heads as (layer, head), best first (ties: lower layer, head)."""
        k = check_int("k", k, low=0, high=self.scores.size)
        order = np.lexsort((np.arange(self.scores.size), -self.scores.ravel()))[:k]
        n_h = len(self.heads)
        return [(self.layers[i // n_h], self.heads[i % n_h]) for i in order]

    def retrieval_heads(self, threshold: float = RETRIEVAL_THRESHOLD) -> list[tuple[int, int]]:
        """Heads with a score above ``threshold`` (the paper: 0.1), best first."""
        n = int((self.scores > threshold).sum())
        return self.top(n)

    def record(self) -> dict:
        return {"label": self.label, "task": self.task, "length": self.length, "depths": list(self.depths),
                "seeds": list(self.seeds), "n_prompts": int(len(self.correct)), "accuracy": float(self.correct.mean()),
                "layers": list(self.layers), "heads": list(self.heads), "scores": self.scores.round(6).tolist(),
                "top10": [[layer, h, round(float(self.scores[self.layers.index(layer), self.heads.index(h)]), 4)]
                          for layer, h in self.top(min(10, self.scores.size))]}


def retrieval_examples(tokenizer, *, task: str, length: int, depths=(0.1, 0.3, 0.5, 0.7, 0.9), seeds=(0,)):
    """The prompts of a retrieval-score / masking measurement: one ``creamviz.tasks`` example per
    (depth, seed), in that order."""
    from creamviz import tasks

    if task not in tasks.GENERATORS:
        raise ValueError(f"task={task!r} is not valid; valid: {', '.join(tasks.GENERATORS)}")
    return [tasks.GENERATORS[task](tokenizer, length, depth=float(d), seed=int(s)) for d in depths for s in seeds]


def retrieval_scores(model, tokenizer, examples, *, label: str = "") -> RetrievalScores:
    """Retrieval score of every head of ``model`` on ``examples`` (``creamviz.tasks`` examples of
    one task; the needle span is :func:`creamviz.attention.prompt_spans`' relevant item). The model
    decodes as many tokens as the gold answer has; its answer is scored by exact match."""
    from creamviz.attention import prompt_spans

    examples = list(examples)
    if not examples:
        raise ValueError("examples must not be empty")
    per, correct = [], []
    for ex in examples:
        gold = _answer_ids(tokenizer, ex)
        gen = greedy_answer(model, ex.prompt_ids, len(gold))
        T0 = len(ex.prompt_ids)
        seq = list(ex.prompt_ids) + gen[:-1]  # the last emitted token is never a query
        rows = np.arange(T0 - 1, T0 - 1 + len(gen))  # row T0-1+t predicts gen[t]
        argmax = attention_argmax(model, seq, rows)
        per.append(copy_score(argmax, ex.prompt_ids, gen, prompt_spans(ex, tokenizer).needle))
        correct.append(gen == gold)
    per = np.stack(per)
    n_layers, n_heads = per.shape[1:]
    return RetrievalScores(scores=per.mean(0), per_prompt=per, correct=np.array(correct), layers=tuple(range(n_layers)),
                           heads=tuple(range(n_heads)), task=examples[0].task, length=int(examples[0].length),
                           depths=tuple(float(e.depth) for e in examples), seeds=tuple(int(e.seed) for e in examples),
                           label=label)


# --------------------------------------------------------------------------- head masking
@contextlib.contextmanager
def mask_heads(model, heads):
    """Inside the block, the outputs of ``heads`` ((layer, head) pairs) are zero for every token
    (their slice of the input of the layer's ``o_proj``). The hooks are removed on exit."""
    from creamviz.attention import _decoder_layers

    layers = _decoder_layers(model)
    n_heads = model.config.num_attention_heads
    by_layer: dict[int, list[int]] = {}
    for pair in heads:
        layer, head = (int(v) for v in pair)
        if not 0 <= layer < len(layers) or not 0 <= head < n_heads:
            raise ValueError(f"heads: ({layer}, {head}) is out of range; valid: layer in [0, {len(layers) - 1}], "
                             f"head in [0, {n_heads - 1}]")
        by_layer.setdefault(layer, []).append(head)

    def make_hook(head_idx, d):
        def hook(module, args):
            x = args[0].clone()  # (B, T, H * d)
            for h in head_idx:
                x[..., h * d:(h + 1) * d] = 0
            return (x, *args[1:])
        return hook

    handles = []
    try:
        for layer, head_idx in by_layer.items():
            attn = layers[layer].self_attn
            handles.append(attn.o_proj.register_forward_pre_hook(make_hook(head_idx, attn.head_dim)))
        yield model
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def answer_exact(model, tokenizer, examples) -> np.ndarray:
    """(n,) bool: the greedy answer equals the gold answer. Greedy decoding reproduces the gold
    answer iff at every answer position the argmax under the gold prefix is the gold token, so one
    teacher-forced forward pass per prompt decides it."""
    device = next(model.parameters()).device
    out = []
    for ex in examples:
        gold = _answer_ids(tokenizer, ex)
        ids = torch.tensor([list(ex.prompt_ids) + gold[:-1]], device=device)
        logits = model(input_ids=ids, use_cache=False).logits[0, len(ex.prompt_ids) - 1:]  # (S, V)
        out.append(bool((logits.argmax(-1).cpu() == torch.tensor(gold)).all()))
    return np.array(out)


@dataclass
class MaskingResult:
    """Exact match with the top-k retrieval heads masked vs k random other heads masked."""

    ks: tuple[int, ...]  # numbers of heads masked
    baseline: float  # exact match with nothing masked
    top: np.ndarray  # (len(ks),) exact match with the top-k retrieval heads masked
    random: np.ndarray  # (len(ks), n_random) exact match with k random non-top heads masked
    random_seeds: tuple[int, ...]  # seeds of the random draws
    n_prompts: int  # prompts scored
    top_heads: list = field(default_factory=list)  # the ranked heads (layer, head) masked from the top

    def record(self) -> dict:
        return {"ks": list(self.ks), "baseline": self.baseline, "top": self.top.tolist(),
                "random": self.random.tolist(), "random_mean": self.random.mean(1).tolist(),
                "random_seeds": list(self.random_seeds), "n_prompts": self.n_prompts,
                "top_heads": [list(map(int, p)) for p in self.top_heads]}


def masking_experiment(model, tokenizer, examples, scores: RetrievalScores, *, ks=(1, 2, 5, 10),
                       n_random: int = 5, seed: int = 0) -> MaskingResult:
    """Mask the top-k heads of ``scores`` (for each k in ``ks``) and, ``n_random`` times, k heads
    drawn uniformly without replacement from the heads outside the top-k (``numpy.random.default_rng``
    seeded ``seed + draw``); exact match of the greedy answer on ``examples`` each time."""
    examples = list(examples)
    if not examples:
        raise ValueError("examples must not be empty")
    n_all = scores.scores.size
    ks = tuple(check_int("ks", k, low=1, high=n_all - 1) for k in ks)
    n_random = check_int("n_random", n_random, low=1)
    seed = check_int("seed", seed, low=0)
    ranked = scores.top(max(ks))
    all_heads = [(layer, h) for layer in scores.layers for h in scores.heads]
    baseline = float(answer_exact(model, tokenizer, examples).mean())
    top, rand = [], []
    for k in ks:
        chosen = ranked[:k]
        with mask_heads(model, chosen):
            top.append(float(answer_exact(model, tokenizer, examples).mean()))
        others = [p for p in all_heads if p not in set(chosen)]
        row = []
        for draw in range(n_random):
            idx = np.random.default_rng(int(seed) + draw).choice(len(others), size=k, replace=False)
            with mask_heads(model, [others[i] for i in idx]):
                row.append(float(answer_exact(model, tokenizer, examples).mean()))
        rand.append(row)
    return MaskingResult(ks=ks, baseline=baseline, top=np.array(top), random=np.array(rand),
                         random_seeds=tuple(int(seed) + d for d in range(n_random)), n_prompts=len(examples),
                         top_heads=ranked)
