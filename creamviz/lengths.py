"""Which length is which: N, L, the model's window W and the two factors, resolved once.

CREAM feeds windows of N tokens (``train_len``) whose position ids reach L (``target_len``); the
sampler's factor is ``L / N``. RoPE is interpolated from the model's pre-trained window W to L, a
factor ``L / W``. The two coincide only when N = W (the default N). :meth:`Lengths.resolve` reads
the model's config once (never its weights) and everything downstream — the CLI, :func:`train`,
the launcher widget, the study, the GPU check — receives the resolved :class:`Lengths`.

:func:`window_of` is the one place W is derived from a config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from creamviz.validation import ParameterError, check_choice, check_int, check_real

__all__ = ["Lengths", "ROPE_CHOICES", "window_of", "model_window"]

ROPE_CHOICES = ("yarn", "linear", "none")  # RoPE interpolation from W to L (see docs/CREAM.md, section 2)


def window_of(config) -> int:
    """The pre-trained window W of a ``transformers`` config, unscaled or already extended.

    The RoPE ``original_max_position_embeddings`` when set; ``max_position_embeddings / factor`` for
    a config saved with linear interpolation (it holds L = factor · W); else ``max_position_embeddings``.
    """
    params = dict(getattr(config, "rope_parameters", None) or {})
    if params.get("original_max_position_embeddings"):
        return int(params["original_max_position_embeddings"])
    if params.get("rope_type") == "linear" and params.get("factor"):  # saved as L = factor * W
        return int(round(config.max_position_embeddings / float(params["factor"])))
    return int(config.max_position_embeddings)


def model_window(model) -> int:
    """W of ``model``: ``"tiny"``, a named model, a local directory (its config.json only) or a config."""
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        from creamviz.models import load_config

        model = load_config(str(model))
    return window_of(model)


@dataclass(frozen=True)
class Lengths:
    """N, L and W of one run, and the factors that follow from them."""

    train_len: int  # N, tokens per training window
    target_len: int  # L, the context length to extend to (position ids in [0, L))
    model_window: int  # W, the model's pre-trained window (read from its config)
    rope: str = "yarn"  # RoPE interpolation from W to L: yarn | linear | none
    factor: float | None = None  # RoPE factor asked for; None -> L / W

    @classmethod
    def resolve(cls, model, target_len: int, *, train_len: int | None = None, rope: str = "yarn",
                factor: float | None = None) -> Lengths:
        """The lengths of training ``model`` (a path, a name or a config) to L = ``target_len`` with
        N = ``train_len`` (None -> W). Reads the config once; ValueError names a bad argument."""
        from creamviz.models import MAX_POSITION

        try:
            window = model_window(model)
        except ParameterError:
            raise
        except ValueError as err:
            raise ParameterError("model", f"model={str(model)!r}: {err}") from None
        big_l = check_int("target_len", target_len, 2, MAX_POSITION,
                          hint=" (float32 RoPE angles are exact below 2**24 positions)")
        big_n = window if train_len is None else check_int("train_len", train_len, 1, big_l - 1,
                                                            hint=" (N must be below target_len)")
        check_choice("rope", rope, ROPE_CHOICES)
        if factor is not None:
            factor = check_real("factor", factor, 1.0, MAX_POSITION / window,
                                hint=f" (L / W for the model's window W = {window})")
        return cls(big_n, big_l, window, rope, factor)

    @property
    def sampler_factor(self) -> float:
        """``L / N``: how far the sampler spreads N tokens."""
        return self.target_len / self.train_len

    @property
    def rope_factor(self) -> float | None:
        """The RoPE factor used: ``factor`` or ``L / W``; None for ``rope='none'``."""
        if self.rope == "none":
            return None
        return float(self.factor) if self.factor is not None else self.target_len / self.model_window

    def load_model(self, model, **kwargs):
        """``model`` loaded with this RoPE interpolation (``creamviz.models.load_model``)."""
        from creamviz.models import load_model

        return load_model(model, rope=None if self.rope == "none" else self.rope, factor=self.rope_factor,
                          **kwargs)

    def sampler_defaults(self, sampler: str, params: dict | None = None) -> dict:
        """The sampler's parameters as they resolve at (N, L) — given ones as given, the others
        from their ``Param`` declaration (e.g. CREAM's k = 4·L/N, μ = 1 + L/N)."""
        from creamviz.samplers import sampler_defaults

        return sampler_defaults(sampler, self.train_len, self.target_len, params)

    def notes(self) -> list[str]:
        big_n, big_l, window = self.train_len, self.target_len, self.model_window
        notes = []
        if big_n != window:
            notes.append(f"N = {big_n} training tokens differ from the model's window W = {window}: the sampler "
                         f"spreads N tokens over L = {big_l} (factor L/N = {self.sampler_factor:g}) while RoPE is "
                         f"interpolated from W to L (factor L/W = {big_l / window:g})")
        if big_n > window:
            notes.append(f"N = {big_n} exceeds the pre-trained window W = {window}: windows longer than the model "
                         "ever saw, before any position trick")
        return notes

    def problems(self, sampler: str | None = None, params: dict | None = None) -> list[str]:
        """What cannot run, each with what to change: L inside W with interpolation, or a sampler
        default rule (``Param.auto``) whose value falls outside the parameter's range at this N."""
        return [text for _, text in self._problems(sampler, params)]

    def _problems(self, sampler: str | None, params: dict | None) -> list[tuple[str, str]]:
        """``(parameter to change, what is wrong)`` pairs."""
        from creamviz.samplers import SAMPLERS

        big_n, big_l, window = self.train_len, self.target_len, self.model_window
        problems = []
        if big_l <= big_n:
            problems.append(("target_len", f"target_len={big_l} must exceed N = train_len = {big_n}"))
            return problems
        if self.rope_factor is not None and self.rope_factor < 1:
            problems.append(("target_len", f"target_len={big_l} is inside the model's window W = {window} (RoPE "
                             f"factor {self.rope_factor:g} < 1): use a larger target_len, or rope='none' (no "
                             "interpolation needed)"))
        given = {k for k, v in (params or {}).items() if v is not None}
        for p in getattr(SAMPLERS.get(sampler), "parameters", ()):
            if p.name in given or p.auto is None or p.kind is str:
                continue
            value = p.auto(big_n, big_l)
            low, high = p.bounds(big_n, big_l)
            if (low is None or value >= low) and (high is None or value <= high):
                continue
            at_window = p.auto(window, big_l)  # the same rule with the RoPE factor L / W
            fit = min(max(at_window, low if low is not None else at_window), high if high is not None else at_window)
            problems.append((p.name,
                f"{sampler}'s {p.name} defaults to {p.auto_text} = {value} (sampler factor L/N = "
                f"{self.sampler_factor:g}), outside its valid range [{low}, {high}] at N = {big_n}"
                f"{p.hint.format(train_len=big_n, target_len=big_l)}. Pass {p.name} explicitly, e.g. "
                f"sampler_params={{'{p.name}': {fit}}} (--{p.name.replace('_', '-')} {fit}: the rule at W = {window}, "
                "clipped to the range)"))
        return problems

    def check(self, sampler: str | None = None, params: dict | None = None) -> Lengths:
        """``self``, or a ValueError listing :meth:`problems`."""
        problems = self._problems(sampler, params)
        if problems:
            raise ParameterError(problems[0][0], "; ".join(text for _, text in problems))
        return self

    def report(self, sampler: str | None = None, params: dict | None = None) -> dict:
        """Everything above as a JSON-able dict (the run metadata's ``lengths``)."""
        defaults = {}
        if sampler is not None and self.target_len > self.train_len:
            try:
                defaults = self.sampler_defaults(sampler, params)
            except ValueError:
                defaults = {}
        return {**{k: v for k, v in asdict(self).items() if k != "factor"},
                "sampler_factor": self.sampler_factor, "rope_factor": self.rope_factor,
                "sampler_defaults": defaults, "notes": self.notes(), "problems": self.problems(sampler, params)}

    def describe(self, sampler: str | None = None, params: dict | None = None) -> str:
        """Two or more lines for a console / widget: N, L, W and the two factors, then notes / problems."""
        rope = "none" if self.rope_factor is None else f"{self.rope} x{self.rope_factor:g} (L / W)"
        lines = [f"N = {self.train_len} tokens per window -> L = {self.target_len} positions; model "
                 f"window W = {self.model_window}",
                 f"sampler factor L/N = {self.sampler_factor:g}; RoPE: {rope}"]
        lines += [f"note: {n}" for n in self.notes()]
        lines += [f"does not fit: {p}" for p in self.problems(sampler, params)]
        return "\n".join(lines)
