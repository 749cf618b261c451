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
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

__all__ = ["check_bool", "check_choice", "check_int", "check_real", "check_size"]


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
        raise ValueError(f"{name} must be {rng}{hint}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}={value} is out of range: valid is {rng}{hint}")
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
        raise ValueError(f"{name} must be a real number, {rng}{hint}, got {value!r} "
                         f"({type(value).__name__})")
    value = float(value)
    bad = not math.isfinite(value)
    bad = bad or (low is not None and (value <= low if low_open else value < low))
    bad = bad or (high is not None and (value >= high if high_open else value > high))
    if bad:
        raise ValueError(f"{name}={value:g} is out of range: valid is {rng}{hint}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (numpy booleans accepted), else a ValueError."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ValueError(f"{name}={value!r} must be True or False")
    return bool(value)


def check_choice(name: str, value: Any, options: Iterable) -> Any:
    """``value`` if it is one of ``options``, else a ValueError listing the valid ones."""
    options = tuple(options)
    try:
        ok = value in options
    except TypeError:  # unhashable values against a set-like
        ok = False
    if not ok:
        raise ValueError(f"{name}={value!r} is not supported; valid: {', '.join(map(repr, options))}")
    return value


def check_size(what: str, count: int, limit: int, *, unit: str = "elements", hint: str = "") -> int:
    """Refuse work before allocating: ``count`` (an estimate in ``unit``) above ``limit`` raises a
    ValueError naming what would be built, the estimate and the limit."""
    if count > limit:
        raise ValueError(f"{what} would need {count} {unit}, above the limit of {limit}{hint}")
    return count
