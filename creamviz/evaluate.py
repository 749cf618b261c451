"""Long-context evaluations: one call each, plain dataclasses / numpy arrays out (no plotting).

- ``accuracy_by_depth``  accuracy against the relative position of the relevant item (the Lost in the
  Middle curve) for key-value retrieval (default), Lines, passkey or NIAH at one length L;
- ``niah_grid``          needle-in-a-haystack accuracy over lengths x depths (array (depth, length));
- ``passkey_by_length``  passkey accuracy per length;
- ``ppl_by_position``    perplexity of held-out text by position bucket at one length;
- ``perplexity_by_length`` sliding-window perplexity at lengths from N to beyond L (CREAM / YaRN's table);
- ``evaluate_eval_set``  any fixed set shipped in ``creamviz/resources/eval/`` (comparable across runs).

Answers come from greedy decoding through ``model.generate`` (``do_sample=False``, the model's own
generation config otherwise), batched with left padding and an explicit attention mask. Every result
has ``.records()``: a tidy list of dicts, one per example (or bucket), ready for a DataFrame.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from creamviz import tasks
from creamviz.scores import (  # re-exported: the result containers live torch-free
    DepthCurve,
    LengthCurve,
    NiahGrid,
    PplByLength,
    PplCurve,
    _binomial_stderr,
    _check_nonempty,
    _depth_key,
    _group_mean,
    depth_curve,
    mean_over_seeds,  # noqa: F401
    niah_grid_from_records,
)
from creamviz.tasks import EVAL_DEPTHS, TaskExample
from creamviz.validation import check_choice, check_int, check_real

MAX_PPL_TOKENS = 1 << 26  # tokens ppl_by_position scores in one call (its windows are held at once)




# ----------------------------------------------------------------------------- generation

@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[Sequence[int]], *, max_new_tokens: int = 8,
             batch_size: int = 8, min_new_tokens: int = 0) -> list[str]:
    """Greedy continuations (decoded, special tokens skipped) of token-id prompts, in input order.

    Prompts are sorted by length and left-padded in batches of ``batch_size``. A batch whose
    prompts fit the model's window (``config.max_position_embeddings``, L for an extended model)
    generates at most up to it: no position beyond L is used. (The task generators size prompt plus
    answer to L, so the answer always fits.) ``min_new_tokens``: end-of-sequence is suppressed before
    that many new tokens (CREAM's LongChat-Lines asks for 5).
    """
    batch_size = check_int("batch_size", batch_size, 1)
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, 1)
    min_new_tokens = check_int("min_new_tokens", min_new_tokens, 0, max_new_tokens)
    _check_nonempty("prompts", prompts)
    if any(len(p) == 0 for p in prompts):
        raise ValueError(f"prompt {next(i for i, p in enumerate(prompts) if len(p) == 0)} is empty; "
                         "every prompt needs at least one token")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = model.device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str | None] = [None] * len(prompts)
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        rows = [torch.tensor(list(prompts[i]), dtype=torch.long) for i in idx]
        ids = pad_sequence(rows, batch_first=True, padding_value=pad, padding_side="left")  # (b, T)
        mask = pad_sequence([torch.ones_like(r) for r in rows], batch_first=True, padding_side="left")
        T = ids.shape[1]
        window = getattr(model.config, "max_position_embeddings", None)
        new_tokens = min(max_new_tokens, window - T) if window and T < window else max_new_tokens
        gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                             max_new_tokens=new_tokens, min_new_tokens=min(min_new_tokens, new_tokens),
                             do_sample=False, pad_token_id=pad)
        for r, i in enumerate(idx):
            out[i] = tokenizer.decode(gen[r, T:].tolist(), skip_special_tokens=True)
    return out  # type: ignore[return-value]


def budget_for(tokenizer, examples: Sequence[TaskExample]) -> int:
    """The generation budget of ``examples`` (one task): the task's own (RULER's tokens_to_generate,
    LitM's 100, CREAM's 35 ...) or, for the byte-scaled tasks, the longest answer's tokens + 2."""
    spec = tasks.task_spec(examples[0].task)
    if spec.max_new_tokens is not None:
        return spec.max_new_tokens
    return max(tasks.n_answer_tokens(tokenizer, ex.answer) for ex in examples) + 2


def score_record(ex: TaskExample, generated: str, *, budget: int, scorer: str | None = None) -> dict:
    """One record: the example's fields, ``generated``, ``score`` in [0, 1] (the scorer's), ``correct``
    (score == 1), and the labels ``mode``, ``scorer`` and ``budget`` (new tokens)."""
    spec = tasks.task_spec(ex.task)
    name = spec.scorer if scorer is None else scorer
    value = tasks.score_value(ex.task, generated, ex.answer, name)
    rec = ex.record()
    rec.pop("prompt")
    rec.update(generated=generated, score=float(value), correct=bool(value == 1.0), mode=spec.mode,
               scorer=name, budget=int(budget))
    return rec


def evaluate_examples(model, tokenizer, examples: Sequence[TaskExample], *, batch_size: int = 8,
                      max_new_tokens: int | None = None, scorer: str | None = None) -> list[dict]:
    """Generate and score each example with its task's own budget and scorer (``max_new_tokens`` /
    ``scorer`` override them); one record per example (:func:`score_record`). Examples of different
    tasks are generated task by task, each with its own budget."""
    _check_nonempty("examples", examples)
    if max_new_tokens is not None:
        check_int("max_new_tokens", max_new_tokens, 1)
    if scorer is not None:
        check_choice("scorer", scorer, tuple(tasks.SCORERS))
    by_task: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        tasks.score_value(ex.task, "", ex.answer, scorer)  # refuse a blank answer / unknown task before generating
        by_task.setdefault(ex.task, []).append(i)
    records: list[dict | None] = [None] * len(examples)
    for idx in by_task.values():
        group = [examples[i] for i in idx]
        budget = budget_for(tokenizer, group) if max_new_tokens is None else max_new_tokens
        floor = min(tasks.task_spec(group[0].task).min_new_tokens, budget)
        gens = generate(model, tokenizer, [ex.prompt_ids for ex in group], max_new_tokens=budget,
                        batch_size=batch_size, min_new_tokens=floor)
        for i, ex, g in zip(idx, group, gens, strict=True):
            records[i] = score_record(ex, g, budget=budget, scorer=scorer)
    return records  # type: ignore[return-value]


# ----------------------------------------------------------------------------- results

def accuracy_by_depth(model, tokenizer, *, task: str = "kv", length: int = 2048,
                      depths: Sequence[float] = EVAL_DEPTHS, n_per_depth: int = 10, seed: int = 0,
                      examples: Sequence[TaskExample] | None = None, batch_size: int = 8) -> DepthCurve:
    """Accuracy by depth of the relevant item (gold pair for kv) at ``length`` tokens.

    Generates ``n_per_depth`` examples per depth (seeds seed, seed+1, ...) unless ``examples`` given.
    """
    if examples is None:
        check_int("n_per_depth", n_per_depth, 1)
        examples = tasks.depth_sweep(task, tokenizer, length, _check_nonempty("depths", depths),
                                     n_per_depth=n_per_depth, seed=seed)
    return depth_curve(evaluate_examples(model, tokenizer, examples, batch_size=batch_size))


def niah_grid(model, tokenizer, *, lengths: Sequence[int] = tasks.EVAL_LENGTHS,
              depths: Sequence[float] = EVAL_DEPTHS, n_per_cell: int = 2, seed: int = 0,
              examples: Sequence[TaskExample] | None = None, batch_size: int = 8) -> NiahGrid:
    """Needle-in-a-haystack accuracy over ``lengths`` x ``depths``."""
    if examples is None:
        check_int("n_per_cell", n_per_cell, 1)
        examples = tasks.niah_grid(tokenizer, _check_nonempty("lengths", lengths),
                                   _check_nonempty("depths", depths), n_per_cell=n_per_cell, seed=seed)
    return niah_grid_from_records(evaluate_examples(model, tokenizer, examples, batch_size=batch_size))


def passkey_by_length(model, tokenizer, *, lengths: Sequence[int] = tasks.EVAL_LENGTHS,
                      n_per_length: int = 10, seed: int = 0, batch_size: int = 8) -> LengthCurve:
    """Passkey accuracy per length; depths drawn uniformly at random (seeded)."""
    check_int("n_per_length", n_per_length, 1)
    tasks.check_example_count(n_per_length * len(lengths))
    examples = [tasks.passkey(tokenizer, int(L), seed=seed + i) for L in _check_nonempty("lengths", lengths)
                for i in range(n_per_length)]
    recs = evaluate_examples(model, tokenizer, examples, batch_size=batch_size)
    Ls, acc, n = _group_mean(np.array([r["length"] for r in recs]), np.array([r["correct"] for r in recs]))
    return LengthCurve("passkey", Ls, acc, _binomial_stderr(acc, n), n, recs)


@torch.no_grad()
def ppl_by_position(model, tokenizer, *, length: int = 2048, bucket: int = 256, n_seqs: int = 4,
                    seed: int = 0, text: str | None = None, batch_size: int = 2) -> PplCurve:
    """Next-token loss by position bucket on ``n_seqs`` random windows of ``length`` tokens.

    Windows come from ``text`` (default: the held-out CPython documentation topics, joined); position
    t's loss is that of predicting token t, so positions 1 ... L-1 are scored.
    """
    bucket, length = check_int("bucket", bucket, 1), check_int("length", length, 2)
    n_seqs, batch_size = check_int("n_seqs", n_seqs, 1), check_int("batch_size", batch_size, 1)
    if n_seqs * length > MAX_PPL_TOKENS:
        raise ValueError(f"n_seqs * length = {n_seqs} * {length} = {n_seqs * length} tokens exceed the limit "
                         f"{MAX_PPL_TOKENS}; ask for fewer or shorter sequences")
    text = "\n".join(tasks.load_corpus("eval")) if text is None else text
    ids_all = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids_all) <= length:
        raise ValueError(f"text has {len(ids_all)} tokens, needs more than length={length}")
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(ids_all) - length, size=n_seqs)
    seqs = torch.tensor([ids_all[s:s + length] for s in starts], dtype=torch.long)  # (n_seqs, L)
    nll = torch.zeros(length - 1)
    for b in range(0, n_seqs, batch_size):
        x = seqs[b:b + batch_size].to(model.device)
        logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits.float()  # (b, L, V)
        lp = torch.log_softmax(logits[:, :-1], dim=-1)
        nll += -lp.gather(-1, x[:, 1:, None])[..., 0].sum(0).cpu()  # (L-1,)
    nll /= n_seqs
    pos = np.arange(1, length)  # position of the predicted token
    first, means, n_pos = _group_mean(pos // bucket, nll.numpy())  # buckets [b * bucket, (b + 1) * bucket)
    return PplCurve(int(length), first * bucket, np.minimum((first + 1) * bucket, length), means, n_pos * n_seqs)


PPL_STRIDE = 256  # window step of the sliding-window perplexity (Position Interpolation / YaRN / CREAM's default)


@torch.no_grad()
def perplexity_by_length(model, tokenizer, lengths: Sequence[int], *, stride: int | None = PPL_STRIDE,
                         text: str | None = None, max_tokens: int | None = None) -> PplByLength:
    """Sliding-window perplexity of ``text`` (default: the held-out CPython documentation) at each
    window length in ``lengths``, as Position Interpolation (arXiv 2306.15595) and YaRN evaluate it:
    windows of ``length`` tokens start every ``stride`` tokens over the first ``max_tokens`` tokens
    (default: all of the text), and each window scores only the tokens no earlier window scored (the
    first window scores all of its tokens but the first). With a stride every length scores the same
    tokens (``max_tokens - 1`` of them), each predicted with up to ``length - 1`` tokens of context.
    ``stride=None``: non-overlapping chunks of ``length`` tokens, each scored whole (CREAM's
    ``eval_ppl.py --truncate``). Lengths beyond the model's window measure extrapolation."""
    lengths = [check_int("lengths[i]", L, 2) for L in _check_nonempty("lengths", lengths)]
    if stride is not None:
        stride = check_int("stride", stride, 1)
    label = "held-out CPython documentation" if text is None else "given text"
    text = "\n".join(tasks.load_corpus("eval")) if text is None else text
    ids_all = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    T = len(ids_all) if max_tokens is None else check_int("max_tokens", max_tokens, 2, len(ids_all),
                                                           hint=" (tokens of the text)")
    if max(lengths) > T:
        raise ValueError(f"lengths up to {max(lengths)} need at least that many tokens of text; the text has {T} "
                         "(pass a longer text or shorter lengths)")
    n_windows = sum((T // L if stride is None else -(-T // stride)) for L in lengths)
    if n_windows * max(lengths) > MAX_PPL_TOKENS:
        raise ValueError(f"perplexity_by_length would run {n_windows} windows of up to {max(lengths)} tokens, above "
                         f"{MAX_PPL_TOKENS} tokens; use a larger stride or max_tokens")
    ids = torch.tensor(ids_all[:T], dtype=torch.long)
    device = model.device
    nll_out, count_out = [], []
    for L in lengths:
        total, count, prev_end = 0.0, 0, 0
        starts = range(0, T - L + 1, L) if stride is None else range(0, T, stride)
        for begin in starts:
            end = min(begin + L, T)
            x = ids[begin:end][None].to(device)  # (1, w)
            logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits.float()  # (1, w, V)
            lp = torch.log_softmax(logits[0, :-1], dim=-1).gather(-1, x[0, 1:, None])[:, 0]  # (w-1,)
            new = (end - begin - 1) if stride is None else end - max(prev_end, begin + 1)
            total += float(-lp[len(lp) - new:].sum()) if new > 0 else 0.0
            count += max(new, 0)
            prev_end = end
            if stride is not None and end == T:
                break
        nll_out.append(total / count)
        count_out.append(count)
    return PplByLength(np.array(lengths), np.array(nll_out), np.array(count_out), stride, label)


def evaluate_eval_set(model, tokenizer, name: str, *, batch_size: int = 8, limit: int | None = None):
    """Evaluate a shipped fixed set (``tasks.eval_set_names()``): ``niah`` -> NiahGrid, ``<task>_L<L>``
    -> DepthCurve. ``limit`` keeps the first ``limit`` examples per depth (per cell for niah)."""
    examples = tasks.load_eval_set(name, tokenizer)
    if limit is not None:
        check_int("limit", limit, 1)
        seen: Counter = Counter()  # examples kept per depth (per cell for niah)
        kept = []
        for ex in examples:
            d = _depth_key(ex.record())
            key = (ex.length, d) if name == "niah" else d
            seen[key] += 1
            if seen[key] <= limit:
                kept.append(ex)
        examples = kept
    recs = evaluate_examples(model, tokenizer, examples, batch_size=batch_size)
    return niah_grid_from_records(recs) if name == "niah" else depth_curve(recs)


# --------------------------------------------------------------------------- one evaluation at L
EVALUATIONS = {  # evaluation name -> what it measures
    "kv": "key-value retrieval by depth at L",
    "niah": "needle in a haystack: length x depth grid up to L",
    "ppl": "perplexity by position at L",
}
MAX_EVAL_LIMIT = 1000  # examples per depth / per NIAH cell / sequences


def check_evaluation(name: str, limit: int) -> None:
    """ValueError unless ``name`` is one of :data:`EVALUATIONS` and ``1 <= limit <= 1000``."""
    if name not in EVALUATIONS:
        raise ValueError(f"evaluation={name!r} is unknown; valid: {', '.join(EVALUATIONS)}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_EVAL_LIMIT:
        raise ValueError(f"eval_limit={limit!r} is out of range: valid is [1, {MAX_EVAL_LIMIT}]")


def evaluate_at(model, tokenizer, name: str, *, target_len: int, limit: int):
    """One evaluation of a model extended to L = ``target_len``: ``"kv"`` (retrieval by depth;
    the shipped fixed set ``kv_L<L>`` when there is one, so runs compare), ``"niah"`` (every
    evaluation length <= L, and L; the shipped set when those are exactly its lengths) or
    ``"ppl"`` (perplexity by position, 8 buckets). ``limit``: examples per depth, per cell, or
    sequences. Returns a ``DepthCurve`` / ``NiahGrid`` / ``PplCurve``."""
    check_evaluation(name, limit)
    if name == "kv":
        if f"kv_L{target_len}" in tasks.eval_set_names():
            return evaluate_eval_set(model, tokenizer, f"kv_L{target_len}", limit=limit)
        return accuracy_by_depth(model, tokenizer, task="kv", length=target_len, n_per_depth=limit)
    if name == "niah":
        lengths = tuple(sorted({x for x in tasks.EVAL_LENGTHS if x <= target_len} | {target_len}))
        if lengths == tuple(tasks.EVAL_LENGTHS) and "niah" in tasks.eval_set_names():
            return evaluate_eval_set(model, tokenizer, "niah", limit=limit)
        return niah_grid(model, tokenizer, lengths=lengths, n_per_cell=limit)
    return ppl_by_position(model, tokenizer, length=target_len, bucket=max(1, target_len // 8), n_seqs=limit,
                           batch_size=1)


# ============================================================================= real models
# Shared-prefix decoding (one prefill per Lost-in-the-Middle context), Wilson intervals and a
# resumable runner that appends records to a JSON file (for long CPU measurements in the background).

def common_prefix_len(prompts: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix shared by all ``prompts``."""
    if not prompts:
        raise ValueError("prompts is empty")
    n = min(len(p) for p in prompts)
    first = prompts[0]
    for i in range(n):
        if any(p[i] != first[i] for p in prompts[1:]):
            return i
    return n


@torch.no_grad()
def generate_shared_prefix(model, tokenizer, prompts: Sequence[Sequence[int]], *, max_new_tokens: int = 8
                           ) -> list[str]:
    """Greedy continuations of prompts that share a long token prefix, e.g. one key-value context
    asked for different keys: the prefix runs through the model once and each prompt continues from
    a copy of its KV cache (``model.generate(..., cache=copy)``), one prompt at a time.

    Same result as :func:`generate` up to float rounding (the prefix's keys / values are computed in
    one pass instead of per prompt); at most one prefill per group instead of one per prompt.
    """
    import copy

    from transformers import DynamicCache

    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 1")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = model.device
    shared = min(common_prefix_len(prompts), min(len(p) for p in prompts) - 1)  # >= 1 new token each
    cache = None
    if shared > 0:
        prefix = torch.tensor([list(prompts[0][:shared])], device=device)
        cache = DynamicCache(config=model.config)
        model(input_ids=prefix, attention_mask=torch.ones_like(prefix), cache=cache, use_cache=True)
    out = []
    for p in prompts:
        ids = torch.tensor([list(p)], device=device)
        kwargs = {} if cache is None else {"cache": copy.deepcopy(cache)}
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=pad, **kwargs)
        out.append(tokenizer.decode(gen[0, ids.shape[1]:].tolist(), skip_special_tokens=True))
    return out


def context_groups(examples: Sequence[TaskExample]) -> list[list[int]]:
    """Indices of ``examples`` grouped by (task, length, seed) in first-seen order: for key-value
    retrieval one group is one JSON object asked at every depth."""
    groups: dict = {}
    for i, ex in enumerate(examples):
        groups.setdefault((ex.task, ex.length, ex.seed), []).append(i)
    return list(groups.values())


def evaluate_resumable(model, tokenizer, examples: Sequence[TaskExample], path, *,
                       max_new_tokens: int | None = None, meta: dict | None = None,
                       progress: bool = True) -> list[dict]:
    """Evaluate ``examples`` group by group (:func:`context_groups`, shared-prefix decoding), writing
    ``{"meta": ..., "records": [...]}`` to the JSON file ``path`` after every group; records already
    in the file (same task, length, seed and requested depth) are kept and not recomputed, so an
    interrupted run continues where it stopped. Returns all records for ``examples``.
    ``max_new_tokens`` defaults to the task's own budget (:func:`budget_for`)."""
    import json
    import os
    import pathlib

    from tqdm.auto import tqdm

    path = pathlib.Path(path)

    def key(r) -> tuple:
        return (r["task"], int(r["length"]), int(r["seed"]), _depth_key(r))

    done = {}
    if path.is_file():
        for r in json.loads(path.read_text())["records"]:
            done[key(r)] = r
    _check_nonempty("examples", examples)
    if max_new_tokens is None:
        max_new_tokens = budget_for(tokenizer, examples)
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, 1)
    info = dict(meta or {}, max_new_tokens=int(max_new_tokens))

    def save():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"meta": info, "records": list(done.values())}, indent=1) + "\n")
        os.replace(tmp, path)

    for group in tqdm(context_groups(examples), desc="contexts", disable=not progress):
        todo = [i for i in group if key(examples[i].record()) not in done]
        if not todo:
            continue
        gens = generate_shared_prefix(model, tokenizer, [examples[i].prompt_ids for i in todo],
                                      max_new_tokens=max_new_tokens)
        for i, g in zip(todo, gens, strict=True):
            rec = score_record(examples[i], g, budget=max_new_tokens)
            done[key(rec)] = rec
        save()
    return [done[key(ex.record())] for ex in examples]


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k / n (``scipy.stats.binomtest``)."""
    from scipy.stats import binomtest

    n = check_int("n", n, 1)
    k = check_int("k", k, 0, n, hint=" (successes out of n)")
    confidence = check_real("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def depth_table(curve: DepthCurve, confidence: float = 0.95) -> list[dict]:
    """One row per depth: accuracy, correct / n and the Wilson interval."""
    rows = []
    for d, a, n in zip(curve.depths, curve.accuracy, curve.n, strict=True):
        k = int(round(a * n))
        lo, hi = wilson_interval(k, int(n), confidence)
        rows.append({"task": curve.task, "mode": curve.mode, "scorer": curve.scorer, "budget": curve.budget,
                     "length": curve.length, "depth": float(d), "accuracy": float(a),
                     "correct": k, "n": int(n), "ci_low": lo, "ci_high": hi, "confidence": confidence})
    return rows
