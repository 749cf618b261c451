"""One place for argument checks, in the style of scikit-learn's ``check_scalar``.

Every public entry point checks what it is given where the value enters, with these functions; a bad
value raises a ``ValueError`` whose one line names the parameter, the value and the valid range:

    >>> check_int("n", 0, 1)
    Traceback (most recent call last):
    ValueError: n=0 is out of range: valid is an integer >= 1

- :func:`check_int`     an integer (``bool`` refused) in ``[low, high]``;
- :func:`check_real`    a finite real number in a closed or half-open range (NaN and inf refused);
- :func:`check_bool`    ``True`` or ``False``;
- :func:`check_choice`  one of a fixed set of options, listed in the error;
- :func:`check_size`    an allocation estimate against its limit, before allocating.

Every error is a :class:`ParameterError` (a ``ValueError``) that also carries the parameter's name,
so a command line can blame the right flag without reading the message.

Dataclass configs declare their checks next to their defaults with :func:`option` (the range or the
choices in the field's metadata); :func:`check_fields` runs them and :func:`valid_text` words them
for the ``--help`` of the command line, so the help and the check come from the same declaration.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["ParameterError", "check_bool", "check_choice", "check_fields", "check_int", "check_real",
           "check_size", "option", "valid_text"]


class ParameterError(ValueError):
    """A ``ValueError`` about one named parameter (``.parameter``), e.g. ``k=0 is out of range ...``."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def _int_range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"an integer in [{low}, {high}]"
    if low is not None:
        return f"an integer >= {low}"
    if high is not None:
        return f"an integer <= {high}"
    return "an integer"


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None, *,
              hint: str = "") -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound may be None), else a ValueError.

    Accepts Python and numpy integers; refuses ``bool``, floats (also ``2.0``) and strings.
    ``hint`` is appended to the message (a unit, or what to do instead)."""
    rng = _int_range(low, high)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(name, f"{name} must be {rng}{hint}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ParameterError(name, f"{name}={value} is out of range: valid is {rng}{hint}")
    return value


def check_real(name: str, value: Any, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False, hint: str = "") -> float:
    """``value`` as a finite ``float`` in the range (``low_open`` / ``high_open`` exclude the bound).

    NaN and ±inf are always refused; so are ``bool`` and non-numbers."""
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    rng = (f"a finite number in {'(' if low_open or low is None else '['}{lo}, {hi}"
           f"{')' if high_open or high is None else ']'}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(name, f"{name} must be a real number, {rng}{hint}, got {value!r} "
                         f"({type(value).__name__})")
    value = float(value)
    bad = not math.isfinite(value)
    bad = bad or (low is not None and (value <= low if low_open else value < low))
    bad = bad or (high is not None and (value >= high if high_open else value > high))
    if bad:
        raise ParameterError(name, f"{name}={value:g} is out of range: valid is {rng}{hint}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (numpy booleans accepted), else a ValueError."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ParameterError(name, f"{name}={value!r} must be True or False")
    return bool(value)


def check_choice(name: str, value: Any, options: Iterable) -> Any:
    """``value`` if it is one of ``options``, else a ValueError listing the valid ones."""
    options = tuple(options)
    try:
        ok = value in options
    except TypeError:  # unhashable values against a set-like
        ok = False
    if not ok:
        raise ParameterError(name, f"{name}={value!r} is not supported; valid: {', '.join(map(repr, options))}")
    return value


def check_size(what: str, count: int, limit: int, *, unit: str = "elements", hint: str = "") -> int:
    """Refuse work before allocating: ``count`` (an estimate in ``unit``) above ``limit`` raises a
    ValueError naming what would be built, the estimate and the limit."""
    if count > limit:
        raise ParameterError(what, f"{what} would need {count} {unit}, above the limit of {limit}{hint}")
    return count


# --------------------------------------------------------------------------- declared checks
@dataclasses.dataclass(frozen=True)
class _Check:
    """What :func:`option` declares: a numeric range or the valid choices (a callable is called on
    use, for registries that grow at run time)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: Iterable | Callable[[], Iterable] | None = None
    hint: str = ""

    def options(self) -> tuple:
        return tuple(self.choices() if callable(self.choices) else self.choices)


def option(default: Any = dataclasses.MISSING, help: str = "", *, low: float | None = None,  # noqa: A002
           high: float | None = None, low_open: bool = False, choices=None, hint: str = "",
           default_factory: Any = dataclasses.MISSING, cli: bool = True) -> Any:
    """A dataclass field with its help line and its check: ``low`` / ``high`` for numbers
    (``low_open`` excludes ``low``), ``choices`` (an iterable, or a function returning one) for
    strings. ``cli=False`` keeps the field off the command line (dicts, nested configs)."""
    metadata = {"help": help, "check": _Check(low, high, low_open, choices, hint)}
    if not cli:
        metadata["cli"] = False
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """``(type, optional)`` of an annotation such as ``int | None``."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), len(args) < len(typing.get_args(tp))
    return tp, False


def valid_text(field: dataclasses.Field, tp: Any) -> str:
    """The valid values of a declared field in words (for ``--help``), or ``""``."""
    check = field.metadata.get("check")
    if check is None:
        return ""
    base, optional = _base_type(tp)
    none = " or none" if optional else ""
    if check.choices is not None:
        return f"one of {', '.join(map(str, check.options()))}{none}"
    if base is int and (check.low is not None or check.high is not None):
        return _int_range(None if check.low is None else int(check.low),
                          None if check.high is None else int(check.high)) + none
    if base is float and (check.low is not None or check.high is not None):
        lo = "" if check.low is None else f"{'>' if check.low_open else '>='} {check.low:g}"
        hi = "" if check.high is None else f"<= {check.high:g}"
        return f"a number {' and '.join(t for t in (lo, hi) if t)}{none}"
    return ""


def check_fields(obj: Any, *, skip: Iterable[str] = ()) -> None:
    """Check every :func:`option` field of dataclass instance ``obj`` against its declaration
    (type from the annotation: ``int``, ``float``, ``bool``, ``str``, optionally ``| None``);
    the first bad one raises :class:`ParameterError` naming the field, the value and the valid range.
    Fields named in ``skip`` are left alone."""
    hints = typing.get_type_hints(type(obj))
    skip = set(skip)
    for f in dataclasses.fields(obj):
        check = f.metadata.get("check")
        if check is None or f.name in skip:
            continue
        value = getattr(obj, f.name)
        base, optional = _base_type(hints[f.name])
        if value is None and optional:
            continue
        if check.choices is not None:
            check_choice(f.name, value, check.options())
        elif base is bool:
            check_bool(f.name, value)
        elif base is int:
            check_int(f.name, value, check.low, check.high, hint=check.hint)
        elif base is float:
            check_real(f.name, value, check.low, check.high, low_open=check.low_open, hint=check.hint)
        elif base is str and not (isinstance(value, str) and value.strip()):
            raise ParameterError(f.name, f"{f.name}={value!r} must be a non-empty string{check.hint}")
        elif base is dict and not isinstance(value, dict):
            raise ParameterError(f.name, f"{f.name}={value!r} must be a dict{check.hint}")
