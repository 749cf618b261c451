"""What attention extraction returns: pooled attention maps and needle sweeps (pure numpy).

:mod:`creamviz.attention` computes these from a model (torch); the figure builders in
:mod:`creamviz.figures` draw them. Keeping the containers here lets ``import creamviz.figures``
run without torch. Shapes are in each class's docstring.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from creamviz.validation import check_int

__all__ = ["AttentionMaps", "NeedleSweep", "TokenText", "pool_boundaries", "THIRDS"]

THIRDS = ("head", "middle", "tail")  # names of the three context thirds


# --------------------------------------------------------------------------- result container
@dataclass(eq=False)  # arrays inside: compare fields explicitly
class AttentionMaps:
    """Pooled attention of one sequence of T tokens, for some layers and heads of one model.

    Shapes use ``n_layers = len(layers)``, ``n_heads = len(heads)``, ``P`` = pool blocks,
    ``B`` = depth bins. Token indices are 0-based positions in the input (not position ids).

    - ``pooled`` (n_layers, n_heads, P, P): block ``[i, j]`` reduces (mean or max) the attention
      probabilities of query tokens ``boundaries[i] : boundaries[i+1]`` on key tokens
      ``boundaries[j] : boundaries[j+1]``; masked (future) entries count as 0, like the zeros of
      ``output_attentions``. With ``reduce="mean"``, ``(pooled * block_sizes).sum(-1) == 1``.
    - ``boundaries`` (P + 1,): token boundaries of the pooling blocks, ``0 ... T``.
    - ``query_attention`` (n_layers, n_heads, T): attention paid to every key token, averaged over
      the final query positions ``query_start ... T - 1`` (the question); sums to 1 over keys.
    - ``depth_profile`` (n_layers, n_heads, B): the Lost-in-the-Middle profile — the part of
      ``query_attention`` that falls on each depth bin of the context ``[0, query_start)``,
      bins ``depth_boundaries``. ``depth_profile.sum(-1) + query_self_mass == 1``.
    - ``thirds`` (n_layers, n_heads, 3): mass on the head / middle / tail thirds of the context
      (token boundaries ``third_boundaries``).
    - ``query_self_mass`` (n_layers, n_heads): mass the question pays to its own tokens.
    - ``position_ids`` (T,): the position ids the maps were computed with (RoPE phases).
    """

    pooled: np.ndarray  # (n_layers, n_heads, P, P) float
    boundaries: np.ndarray  # (P + 1,) int token boundaries of the pooling blocks
    query_attention: np.ndarray  # (n_layers, n_heads, T) mean attention of the final queries
    depth_profile: np.ndarray  # (n_layers, n_heads, B) mass per context depth bin
    depth_boundaries: np.ndarray  # (B + 1,) int token boundaries of the depth bins
    thirds: np.ndarray  # (n_layers, n_heads, 3) mass on head / middle / tail thirds
    third_boundaries: np.ndarray  # (4,) int token boundaries of the thirds
    query_self_mass: np.ndarray  # (n_layers, n_heads) mass of the question on itself
    layers: tuple[int, ...]  # model layer indices of axis 0
    heads: tuple[int, ...]  # model (query) head indices of axis 1
    position_ids: np.ndarray  # (T,) position ids used
    query_start: int  # first final query position: the question is query_start ... T - 1
    reduce: str = "mean"  # block reduction: "mean" or "max"
    is_difference: bool = False  # True for the result of difference(): values are signed
    label: str = ""  # free text (model name) used by figures

    # ---------------------------------------------------------------- derived
    @property
    def seq_len(self) -> int:
        """T, the number of tokens."""
        return int(self.boundaries[-1])

    @property
    def pool(self) -> int:
        """P, the number of pooling blocks per axis."""
        return len(self.boundaries) - 1

    @property
    def block_sizes(self) -> np.ndarray:
        """(P,) tokens per pooling block."""
        return np.diff(self.boundaries)

    def mass_on(self, start: int, stop: int) -> np.ndarray:
        """(n_layers, n_heads) attention mass the question pays to key tokens ``start ... stop-1``
        (e.g. a needle's span)."""
        check_int("start", start, low=0, high=self.seq_len - 1)
        check_int("stop", stop, low=start + 1, high=self.seq_len)
        return self.query_attention[..., start:stop].sum(-1)

    def top_heads(self, start: int, stop: int, k: int = 1) -> list[tuple[int, int]]:
        """The ``k`` (layer, head) pairs (model indices) whose question pays the most attention to
        key tokens ``start ... stop-1``, best first."""
        mass = self.mass_on(start, stop)  # (n_layers, n_heads)
        k = check_int("k", k, low=1, high=mass.size)
        order = np.argsort(mass, axis=None, kind="stable")[::-1][:k]
        return [(self.layers[i // mass.shape[1]], self.heads[i % mass.shape[1]]) for i in order]

    # ---------------------------------------------------------------- selection
    def _axis_index(self, name: str, wanted, available: tuple[int, ...]) -> list[int]:
        if wanted is None:
            return list(range(len(available)))
        items = [wanted] if isinstance(wanted, numbers.Integral) else list(wanted)
        out = []
        for w in items:
            if isinstance(w, bool) or not isinstance(w, numbers.Integral) or int(w) not in available:
                raise ValueError(f"{name}={w!r} is not among the computed {name}s {list(available)}")
            out.append(available.index(int(w)))
        return out

    def select(self, layer=None, head=None) -> AttentionMaps:
        """The maps of some layers / heads (model indices; an int or a sequence; None = all).

        Axes are kept: ``select(layer=2, head=1).pooled`` has shape (1, 1, P, P).
        """
        li = self._axis_index("layer", layer, self.layers)
        hi = self._axis_index("head", head, self.heads)
        ix = np.ix_(li, hi)
        return replace(
            self,
            pooled=self.pooled[ix], query_attention=self.query_attention[ix],
            depth_profile=self.depth_profile[ix], thirds=self.thirds[ix],
            query_self_mass=self.query_self_mass[ix],
            layers=tuple(self.layers[i] for i in li), heads=tuple(self.heads[i] for i in hi))

    def map(self, layer: int, head: int) -> np.ndarray:
        """(P, P) pooled map of one model layer and head."""
        return self.select(layer, head).pooled[0, 0]

    def mean(self) -> AttentionMaps:
        """Average over the selected layers and heads -> maps with one pseudo layer and head
        (indices ``(-1,)``: "mean"). With ``reduce="max"`` the pooled maps are the mean of the
        per-head block maxima."""
        def avg(a):
            return a.mean(axis=(0, 1), keepdims=True)
        return replace(
            self, pooled=avg(self.pooled), query_attention=avg(self.query_attention),
            depth_profile=avg(self.depth_profile), thirds=avg(self.thirds),
            query_self_mass=avg(self.query_self_mass), layers=(-1,), heads=(-1,))

    def difference(self, other: AttentionMaps) -> AttentionMaps:
        """``self - other`` (e.g. fine-tuned minus base), same layers, heads, blocks and bins.

        Every array becomes a signed difference; ``is_difference`` is set. Raises ValueError when
        the two maps are not comparable.
        """
        if not isinstance(other, AttentionMaps):
            raise ValueError(f"other must be an AttentionMaps, got {type(other).__name__}")
        for name in ("boundaries", "depth_boundaries", "third_boundaries"):
            if not np.array_equal(getattr(self, name), getattr(other, name)):
                raise ValueError(f"cannot difference maps with different {name}: "
                                 f"{getattr(self, name)[:4]}... vs {getattr(other, name)[:4]}...")
        for name in ("layers", "heads", "reduce", "query_start"):
            if getattr(self, name) != getattr(other, name):
                raise ValueError(f"cannot difference maps with different {name}: "
                                 f"{getattr(self, name)!r} vs {getattr(other, name)!r}")
        return replace(
            self,
            pooled=self.pooled - other.pooled,
            query_attention=self.query_attention - other.query_attention,
            depth_profile=self.depth_profile - other.depth_profile,
            thirds=self.thirds - other.thirds,
            query_self_mass=self.query_self_mass - other.query_self_mass,
            is_difference=True,
            label=f"{self.label or 'a'} - {other.label or 'b'}")

    __sub__ = difference


# --------------------------------------------------------------------------- validation helpers


def _check_indices(name: str, values, n: int) -> tuple[int, ...]:
    """None -> all of range(n); an int or a sequence of distinct ints in [0, n) otherwise."""
    if values is None:
        return tuple(range(n))
    items = [values] if isinstance(values, numbers.Integral) else values
    if isinstance(items, (str, bytes)) or not isinstance(items, (Sequence, np.ndarray, range)):
        raise ValueError(f"{name} must be None, an int or a sequence of ints in [0, {n - 1}], got {values!r}")
    out = tuple(check_int(name, int(v) if isinstance(v, np.integer) else v, low=0, high=n - 1)
                for v in items)
    if not out:
        raise ValueError(f"{name} must not be empty; valid indices are [0, {n - 1}]")
    if len(set(out)) != len(out):
        raise ValueError(f"{name}={list(out)} has repeated indices")
    return out


def pool_boundaries(seq_len: int, pool: int) -> np.ndarray:
    """(pool + 1,) int token boundaries splitting ``seq_len`` tokens into ``pool`` contiguous blocks
    of ``floor`` / ``ceil(seq_len / pool)`` tokens: ``(arange(pool + 1) * seq_len) // pool``."""
    check_int("seq_len", seq_len, low=1)
    check_int("pool", pool, low=1, high=seq_len)
    return (np.arange(pool + 1, dtype=np.int64) * seq_len) // pool


# --------------------------------------------------------------------------- needle sweep
@dataclass(eq=False)
class NeedleSweep:
    """Attention of the final query on the relevant item of retrieval prompts, by its depth.

    The attention counterpart of the Lost-in-the-Middle accuracy curve. Shapes: D depths, S seeds.
    """

    depths: np.ndarray  # (D,) relative depth of the relevant item, 0 = start, 1 = end of the context
    mass: np.ndarray  # (D, S, n_layers, n_heads) attention mass of the question on the item
    uniform: np.ndarray  # (D, S) item tokens / context tokens: the share under uniform attention
    layers: tuple[int, ...]  # model layer indices of axis 2
    heads: tuple[int, ...]  # model head indices of axis 3
    task: str  # kv | lines | passkey | niah
    length: int  # L, prompt budget in tokens
    query_len: int  # final query positions averaged
    label: str = ""  # model name, for figures

    def best_head(self) -> tuple[int, int]:
        """(layer, head) with the highest mass on the item, averaged over depths and seeds."""
        mean = self.mass.mean(axis=(0, 1))  # (n_layers, n_heads)
        i, j = np.unravel_index(int(np.argmax(mean)), mean.shape)
        return self.layers[i], self.heads[j]

    def curve(self, layer: int | None = None, head: int | None = None) -> np.ndarray:
        """(D,) mass on the item by depth, mean over seeds, for one model layer / head
        (None = mean over the computed ones)."""
        li = list(range(len(self.layers))) if layer is None else [self.layers.index(layer)]
        hi = list(range(len(self.heads))) if head is None else [self.heads.index(head)]
        return self.mass[:, :, li][:, :, :, hi].mean(axis=(1, 2, 3))


# --------------------------------------------------------------------------- token text
@dataclass(frozen=True)
class TokenText:
    """The text of every token of one prompt and its marked spans, for labelling attention figures
    (hover text, axis ticks, shaded spans) the way CircuitsVis / bertviz show tokens.

    Built by :func:`creamviz.attention.token_text` (which needs the tokenizer); figures only read it.
    """

    tokens: tuple[str, ...]  # decoded text of each of the T tokens, in order
    marks: tuple[tuple[str, int, int], ...] = ()  # (name, start, stop) token spans, e.g. ("gold pair", 40, 47)

    @property
    def seq_len(self) -> int:
        """T, the number of tokens."""
        return len(self.tokens)

    @staticmethod
    def shown(text: str) -> str:
        """``text`` with line breaks and tabs made visible (↵, ⇥)."""
        return text.replace("\r", "").replace("\n", "↵").replace("\t", "⇥")

    def span_text(self, start: int, stop: int, max_chars: int = 40) -> str:
        """The text of tokens ``start ... stop-1`` (line breaks shown as ↵), cut in the middle with
        "…" when longer than ``max_chars``."""
        check_int("start", start, low=0, high=self.seq_len - 1)
        check_int("stop", stop, low=start + 1, high=self.seq_len)
        max_chars = check_int("max_chars", max_chars, low=3)
        text = self.shown("".join(self.tokens[start:stop]))
        if len(text) <= max_chars:
            return text
        head = (max_chars - 1) // 2
        return text[:head] + "…" + text[len(text) - (max_chars - 1 - head):]

    def block_texts(self, boundaries, max_chars: int = 40) -> list[str]:
        """The text of each pooled block ``boundaries[i] ... boundaries[i+1]-1`` (see :meth:`span_text`)."""
        b = np.asarray(boundaries)
        if b[-1] != self.seq_len:
            raise ValueError(f"boundaries end at {int(b[-1])} tokens; the token text has T = {self.seq_len}")
        return [self.span_text(int(b[i]), int(b[i + 1]), max_chars) for i in range(len(b) - 1)]

    def check_matches(self, seq_len: int) -> None:
        """ValueError unless these tokens belong to a sequence of ``seq_len`` tokens."""
        if self.seq_len != seq_len:
            raise ValueError(f"tokens hold T = {self.seq_len} tokens, but the maps were computed on "
                             f"T = {seq_len}; pass the token text of the same prompt")
