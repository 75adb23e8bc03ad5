"""Argument validators shared by every public entry point.

One place decides what a valid setting looks like and how a refusal reads, so every error
has the same shape: ``"<who>: <name> must be <what>, got <name>=<value>"``. The checks compare
numbers, not truthiness (``low=0`` is valid), and refuse ``bool`` where a number is asked for
(``True`` is an ``int`` to Python, never a setting a user meant).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from parzen.exceptions import ConfigError


def _refuse(who: str, name: str, what: str, value: Any) -> ConfigError:
    prefix = f"{who}: " if who else ""
    return ConfigError(f"{prefix}{name} must be {what}, got {name}={value!r}")


def _is_int(value: Any) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def _is_number(value: Any) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(
        value, (int, float, np.integer, np.floating))


def _is_real(value: Any) -> bool:
    """Any real number but a bool (``Fraction`` and numpy scalars included)."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)


def integer(name: str, value: Any, minimum: int, *, who: str = "") -> int:
    """``value`` as an int ``>= minimum``.

    Raises:
        ConfigError: ``value`` is not an int (bools and floats are refused) or is too small.
    """
    if not _is_int(value) or int(value) < minimum:
        raise _refuse(who, name, f"an int >= {minimum}", value)
    return int(value)


def number(name: str, value: Any, *, low: float = -math.inf, high: float = math.inf,
           low_open: bool = False, high_open: bool = False, who: str = "") -> float:
    """``value`` as a finite float within the given bounds.

    Raises:
        ConfigError: ``value`` is not a finite number in range.
    """
    ok = _is_number(value) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        raise _refuse(who, name, _range_text(low, high, low_open, high_open), value)
    return float(value)


def optional_number(name: str, value: Any, *, low: float = -math.inf,
                    low_open: bool = False, who: str = "") -> float | None:
    """``value`` as a finite float ``>= low`` (``> low`` with ``low_open``), or None.

    Raises:
        ConfigError: ``value`` is neither None nor a finite number in range.
    """
    if value is None:
        return None
    try:
        return number(name, value, low=low, low_open=low_open, who=who)
    except ConfigError:
        what = _range_text(low, math.inf, low_open, False)
        raise _refuse(who, name, f"{what} or None", value) from None


def seconds(name: str, value: Any, *, allow_none: bool = False, who: str = "") -> float | None:
    """A duration: a number of seconds ``> 0`` (or None when ``allow_none``).

    Raises:
        ConfigError: ``value`` is not a positive number of seconds.
    """
    if value is None and allow_none:
        return None
    if not _is_number(value) or not float(value) > 0 or math.isnan(float(value)):
        none = " or None" if allow_none else ""
        raise _refuse(who, name, f"a number of seconds > 0{none}", value)
    return float(value)


def run_timeout(value: Any) -> None:
    """Refuse a run's ``timeout`` (fmin's, or a trials object's) that is not None or a
    positive number, in hyperopt's words, which its own tests compare.

    Raises:
        ConfigError: ``value`` is neither None nor a positive number.
    """
    if value is not None and (not _is_real(value) or not float(value) > 0):
        raise ConfigError("The timeout argument should be None or a positive value. "
                          f"Given value: {value}")


def run_loss_threshold(value: Any) -> None:
    """Refuse a run's ``loss_threshold`` that is not None or a number, in hyperopt's words.

    Raises:
        ConfigError: ``value`` is neither None nor a number.
    """
    if value is not None and not _is_real(value):
        raise ConfigError("The loss_threshold argument should be None or a numeric value. "
                          f"Given value: {value}")


def flag(name: str, value: Any, *, who: str = "") -> bool:
    """``value`` as a bool; 0, 1 and strings are refused (they are usually a typo).

    Raises:
        ConfigError: ``value`` is not True or False.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise _refuse(who, name, "True or False", value)
    return bool(value)


def _range_text(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if math.isinf(low) and math.isinf(high):
        return "a finite number"
    if math.isinf(high):
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    lb = "(" if low_open else "["
    rb = ")" if high_open else "]"
    return f"a number in {lb}{low:g}, {high:g}{rb}"
