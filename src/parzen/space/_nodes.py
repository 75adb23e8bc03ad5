"""Search-space nodes: one frozen dataclass per distribution, plus ``Choice`` and ``Cast``.

Nodes are built by the ``hp`` functions, which validate their arguments, so a node that exists
is valid. Values follow hyperopt's conventions so that stored trials stay interchangeable:
``loguniform``/``lognormal`` bounds are given in log space, a choice's value in a trial is the
*index* of the option, and quantised values are floats until ``scope.int`` casts them.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from parzen.exceptions import UnsupportedExpression


class Node:
    """Base of every space node. Arithmetic is refused: parzen does not interpret graphs."""

    def _refuse(self, *_: Any) -> Any:
        raise UnsupportedExpression(
            f"arithmetic on {self!r} is not supported: parzen spaces are distributions, choices "
            "and scope.int/scope.float only. Apply the arithmetic inside your objective instead."
        )

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __pow__ = __rpow__ = _refuse
    __neg__ = __pos__ = __abs__ = __mod__ = __rmod__ = _refuse

    def __call__(self, *_: Any, **__: Any) -> Any:
        raise UnsupportedExpression(f"{self!r} is not callable; use it as a value in the space")

    def __getitem__(self, _: Any) -> Any:
        raise UnsupportedExpression(
            f"indexing {self!r} is not supported; index the value inside your objective"
        )


@dataclass(frozen=True, eq=True)
class Param(Node):
    """A labelled random variable: one dimension of the search space."""

    label: str

    @property
    def kind(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True, eq=True)
class Uniform(Param):
    """``hp.uniform``/``quniform``/``loguniform``/``qloguniform``.

    ``low``/``high`` are in log space when ``log`` is true, as in hyperopt.
    """

    low: float
    high: float
    q: float | None = None
    log: bool = False

    @property
    def kind(self) -> str:
        return ("q" if self.q is not None else "") + ("loguniform" if self.log else "uniform")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "low": self.low, "high": self.high,
                "q": self.q}


@dataclass(frozen=True, eq=True)
class Normal(Param):
    """``hp.normal``/``qnormal``/``lognormal``/``qlognormal`` (``mu``/``sigma`` in log space
    when ``log``)."""

    mu: float
    sigma: float
    q: float | None = None
    log: bool = False

    @property
    def kind(self) -> str:
        return ("q" if self.q is not None else "") + ("lognormal" if self.log else "normal")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "mu": self.mu, "sigma": self.sigma,
                "q": self.q}


@dataclass(frozen=True, eq=True)
class RandInt(Param):
    """``hp.randint``: an integer in ``[low, high)``, with no order assumed."""

    low: int
    high: int

    @property
    def kind(self) -> str:
        return "randint"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "low": self.low, "high": self.high}


@dataclass(frozen=True, eq=False)
class Choice(Param):
    """``hp.choice``/``hp.pchoice``: the trial stores the index of the chosen option."""

    options: tuple[Any, ...]
    probs: tuple[float, ...] | None = None

    @property
    def kind(self) -> str:
        return "choice" if self.probs is None else "pchoice"

    @property
    def weights(self) -> tuple[float, ...]:
        n = len(self.options)
        return self.probs if self.probs is not None else tuple(1.0 / n for _ in range(n))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "n_options": len(self.options),
                "probs": list(self.probs) if self.probs is not None else None}

    # Options may hold unhashable or array-valued constants, so identity decides equality for
    # the node itself; `fingerprint` in _compile compares structure.
    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


@dataclass(frozen=True, eq=True)
class Cast(Node):
    """``scope.int(node)`` / ``scope.float(node)``: a type cast applied by ``space_eval``."""

    inner: Any
    to: str  # "int" or "float"

    def apply(self, value: Any) -> Any:
        if self.to == "int":
            # hyperopt's scope.int truncates; quantised floats are already integral.
            return int(value)
        return float(value)


def is_finite_number(x: Any) -> bool:
    """True for a real, finite int or float (bools excluded: ``True`` is not a bound)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        return False  # a string such as "0" converts with float() but is not a bound
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
