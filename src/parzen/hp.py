"""hyperopt's ``hp`` namespace: functions that build validated search-space nodes.

Every argument problem is reported here, when the space is built, with the label and a fix.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from parzen.exceptions import InvalidDistribution
from parzen.space import Cast, Choice, Node, Normal, RandInt, Uniform, expr_text, is_finite_number

__all__ = [
    "choice",
    "lognormal",
    "loguniform",
    "normal",
    "pchoice",
    "qlognormal",
    "qloguniform",
    "qnormal",
    "quniform",
    "randint",
    "uniform",
    "uniformint",
]


def _label(fn: str, label: Any) -> str:
    if not isinstance(label, str):
        raise InvalidDistribution(
            f"hp.{fn}: the label must be a string, got {label!r} ({type(label).__name__}); "
            f"pass a name such as hp.{fn}('learning_rate', ...)"
        )
    if not label:
        raise InvalidDistribution(f"hp.{fn}: the label must be a non-empty string")
    return label


def _refuse_node(fn: str, label: str, name: str, value: Any) -> None:
    if isinstance(value, Node):
        raise InvalidDistribution(
            f"hp.{fn}({label!r}): {name} is itself a search-space expression "
            f"({expr_text(value)}); parzen's distributions take constant arguments, because "
            "the samplers model each label on its own. Give this label a fixed range and "
            "combine the two in an expression instead, e.g. "
            "hp.uniform('frac', 0, 1) * hp.uniform('high', 1, 2)"
        )


def _number(fn: str, label: str, name: str, value: Any) -> float:
    _refuse_node(fn, label, name, value)
    if not is_finite_number(value):
        raise InvalidDistribution(
            f"hp.{fn}({label!r}): {name} must be a finite number, got {name}={value!r}"
        )
    return float(value)


def _bounds(fn: str, label: str, low: Any, high: Any) -> tuple[float, float]:
    lo = _number(fn, label, "low", low)
    hi = _number(fn, label, "high", high)
    if not lo < hi:
        raise InvalidDistribution(
            f"hp.{fn}({label!r}): low must be < high, got low={low!r}, high={high!r}; "
            "swap them or widen the range"
        )
    return lo, hi


def _q(fn: str, label: str, q: Any) -> float:
    qv = _number(fn, label, "q", q)
    if not qv > 0:
        raise InvalidDistribution(
            f"hp.{fn}({label!r}): q must be > 0, got q={q!r}; q is the step between values"
        )
    return qv


def _sigma(fn: str, label: str, sigma: Any) -> float:
    s = _number(fn, label, "sigma", sigma)
    if not s > 0:
        raise InvalidDistribution(f"hp.{fn}({label!r}): sigma must be > 0, got sigma={sigma!r}")
    return s


def uniform(label: str, low: float, high: float) -> Uniform:
    """A float drawn uniformly from ``[low, high]``."""
    lab = _label("uniform", label)
    lo, hi = _bounds("uniform", lab, low, high)
    return Uniform(lab, lo, hi)


def quniform(label: str, low: float, high: float, q: float) -> Uniform:
    """``round(uniform(low, high) / q) * q``: a float on a grid of step ``q``."""
    lab = _label("quniform", label)
    lo, hi = _bounds("quniform", lab, low, high)
    return Uniform(lab, lo, hi, q=_q("quniform", lab, q))


def loguniform(label: str, low: float, high: float) -> Uniform:
    """``exp(uniform(low, high))``: ``low`` and ``high`` are natural logs of the bounds."""
    lab = _label("loguniform", label)
    lo, hi = _bounds("loguniform", lab, low, high)
    _check_log_bounds("loguniform", lab, lo, hi)
    return Uniform(lab, lo, hi, log=True)


def qloguniform(label: str, low: float, high: float, q: float) -> Uniform:
    """``round(exp(uniform(low, high)) / q) * q``."""
    lab = _label("qloguniform", label)
    lo, hi = _bounds("qloguniform", lab, low, high)
    _check_log_bounds("qloguniform", lab, lo, hi)
    return Uniform(lab, lo, hi, q=_q("qloguniform", lab, q), log=True)


def _check_log_bounds(fn: str, label: str, lo: float, hi: float) -> None:
    # Bounds are exponents; a typo like loguniform('lr', 1e-5, 1e-1) gives a range of
    # exp(1e-5)..exp(0.1), which is almost certainly not what was meant.
    if hi > 700:
        raise InvalidDistribution(
            f"hp.{fn}({label!r}): high={hi!r} is an exponent and exp({hi}) overflows; pass "
            f"natural logs, e.g. hp.{fn}({label!r}, math.log(1e-5), math.log(1e-1))"
        )


def normal(label: str, mu: float, sigma: float) -> Normal:
    """A float drawn from a normal distribution (unbounded)."""
    lab = _label("normal", label)
    return Normal(lab, _number("normal", lab, "mu", mu), _sigma("normal", lab, sigma))


def qnormal(label: str, mu: float, sigma: float, q: float) -> Normal:
    """``round(normal(mu, sigma) / q) * q``."""
    lab = _label("qnormal", label)
    return Normal(lab, _number("qnormal", lab, "mu", mu), _sigma("qnormal", lab, sigma),
                  q=_q("qnormal", lab, q))


def lognormal(label: str, mu: float, sigma: float) -> Normal:
    """``exp(normal(mu, sigma))``."""
    lab = _label("lognormal", label)
    return Normal(lab, _number("lognormal", lab, "mu", mu), _sigma("lognormal", lab, sigma),
                  log=True)


def qlognormal(label: str, mu: float, sigma: float, q: float) -> Normal:
    """``round(exp(normal(mu, sigma)) / q) * q``."""
    lab = _label("qlognormal", label)
    return Normal(lab, _number("qlognormal", lab, "mu", mu),
                  _sigma("qlognormal", lab, sigma), q=_q("qlognormal", lab, q), log=True)


def randint(label: str, *args: int) -> RandInt:
    """``randint(label, upper)`` gives an int in ``[0, upper)``; ``randint(label, low, high)``
    one in ``[low, high)``. Values are treated as unordered categories, as in hyperopt."""
    lab = _label("randint", label)
    if len(args) == 1:
        low, high = 0, args[0]
    elif len(args) == 2:
        low, high = args
    else:
        raise InvalidDistribution(
            f"hp.randint({lab!r}): takes (label, upper) or (label, low, high), got "
            f"{len(args)} bounds {args!r}"
        )
    for name, v in (("low", low), ("high", high)):
        _refuse_node("randint", lab, name, v)
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not is_finite_number(v) \
                or float(v) != int(v):
            raise InvalidDistribution(
                f"hp.randint({lab!r}): {name} must be an integer, got {name}={v!r}"
            )
    if not int(low) < int(high):
        raise InvalidDistribution(
            f"hp.randint({lab!r}): low must be < high, got low={low!r}, high={high!r} "
            "(high is exclusive)"
        )
    return RandInt(lab, int(low), int(high))


def uniformint(label: str, low: int, high: int, q: float = 1.0) -> Cast:
    """An integer drawn uniformly from ``[low, high]`` (both inclusive)."""
    lab = _label("uniformint", label)
    lo, hi = _bounds("uniformint", lab, low, high)
    return Cast(Uniform(lab, lo, hi, q=_q("uniformint", lab, q)), "int")


def choice(label: str, options: Sequence[Any]) -> Choice:
    """One of ``options``; trials record the chosen index. Options may hold nested spaces."""
    lab = _label("choice", label)
    if isinstance(options, Node):
        raise InvalidDistribution(
            f"hp.choice({lab!r}): options is a search-space expression ({expr_text(options)}); "
            "give the options as a list or tuple (its items may be expressions)"
        )
    if isinstance(options, np.ndarray) and options.ndim == 1:
        # hp.choice('n', np.arange(10, 100, 10)) is common hyperopt code; keep Python scalars.
        options = options.tolist()
    if isinstance(options, range):
        options = list(options)
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
        raise InvalidDistribution(
            f"hp.choice({lab!r}): options must be a list or tuple, got {options!r}"
        )
    if len(options) == 0:
        raise InvalidDistribution(
            f"hp.choice({lab!r}): options is empty; give at least one option"
        )
    return Choice(lab, tuple(options))


def pchoice(label: str, p_options: Sequence[tuple[float, Any]]) -> Choice:
    """Like ``choice`` with prior probabilities: ``pchoice(label, [(0.2, a), (0.8, b)])``."""
    lab = _label("pchoice", label)
    if isinstance(p_options, (str, bytes)) or not isinstance(p_options, Sequence):
        raise InvalidDistribution(
            f"hp.pchoice({lab!r}): expected a list of (probability, option) pairs, "
            f"got {p_options!r}"
        )
    if len(p_options) == 0:
        raise InvalidDistribution(f"hp.pchoice({lab!r}): options is empty")
    probs: list[float] = []
    opts: list[Any] = []
    for i, pair in enumerate(p_options):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise InvalidDistribution(
                f"hp.pchoice({lab!r}): item {i} must be a (probability, option) pair, "
                f"got {pair!r}"
            )
        p = pair[0]
        _refuse_node("pchoice", lab, f"the probability of item {i}", p)
        if not is_finite_number(p) or float(p) < 0:
            raise InvalidDistribution(
                f"hp.pchoice({lab!r}): probability of item {i} must be a number >= 0, got {p!r}"
            )
        probs.append(float(p))
        opts.append(pair[1])
    total = math.fsum(probs)
    if abs(total - 1.0) > 1e-6:
        raise InvalidDistribution(
            f"hp.pchoice({lab!r}): probabilities must sum to 1, got {total:.6g} from {probs}; "
            "normalise them"
        )
    return Choice(lab, tuple(opts), tuple(p / total for p in probs))
