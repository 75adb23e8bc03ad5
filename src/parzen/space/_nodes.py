"""Search-space nodes: one frozen dataclass per distribution, ``Choice``, ``Cast``, and the
expressions built over them (``Call``, ``Literal``).

Nodes are built by the ``hp`` functions, which validate their arguments, so a node that exists
is valid. Values follow hyperopt's conventions so that stored trials stay interchangeable:
``loguniform``/``lognormal`` bounds are given in log space, a choice's value in a trial is the
*index* of the option, and quantised values are floats until ``scope.int`` casts them.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from parzen.exceptions import UnsupportedExpression


class Node:
    """Base of every space node: distributions (``Param``), casts and pyll expressions.

    Python's operators on a node build an expression (``Call``) that ``space_eval``
    evaluates once the labels have values: ``hp.uniform('x', 0, 1) * 2 - 1``,
    ``10 ** hp.quniform('e', -5, -1, 1)``, ``hp.choice('c', [(1, 2), (3, 4)])[0]``.
    Samplers see only the labelled distributions, never the expressions around them.
    """

    # numpy must hand binary operators back to the node (np.float64(2) * node is an
    # expression, not a 0-d object array).
    __array_ufunc__ = None

    def __add__(self, other: Any) -> Call:
        return _op("add", self, other)

    def __radd__(self, other: Any) -> Call:
        return _op("add", other, self)

    def __sub__(self, other: Any) -> Call:
        return _op("sub", self, other)

    def __rsub__(self, other: Any) -> Call:
        return _op("sub", other, self)

    def __mul__(self, other: Any) -> Call:
        return _op("mul", self, other)

    def __rmul__(self, other: Any) -> Call:
        return _op("mul", other, self)

    def __truediv__(self, other: Any) -> Call:
        return _op("truediv", self, other)

    def __rtruediv__(self, other: Any) -> Call:
        return _op("truediv", other, self)

    def __floordiv__(self, other: Any) -> Call:
        return _op("floordiv", self, other)

    def __rfloordiv__(self, other: Any) -> Call:
        return _op("floordiv", other, self)

    def __mod__(self, other: Any) -> Call:
        return _op("mod", self, other)

    def __rmod__(self, other: Any) -> Call:
        return _op("mod", other, self)

    def __pow__(self, other: Any) -> Call:
        return _op("pow", self, other)

    def __rpow__(self, other: Any) -> Call:
        return _op("pow", other, self)

    def __neg__(self) -> Call:
        return _op("neg", self)

    def __pos__(self) -> Call:
        return _op("pos", self)

    def __abs__(self) -> Call:
        return _op("abs", self)

    def __lt__(self, other: Any) -> Call:
        return _op("lt", self, other)

    def __le__(self, other: Any) -> Call:
        return _op("le", self, other)

    def __gt__(self, other: Any) -> Call:
        return _op("gt", self, other)

    def __ge__(self, other: Any) -> Call:
        return _op("ge", self, other)

    def __getitem__(self, key: Any) -> Call:
        return _op("getitem", self, key)

    def __iter__(self) -> Any:
        # Without this, Python would iterate by calling __getitem__(0), (1), ... forever.
        raise TypeError(
            f"{self!r} is a search-space node, not a sequence: its value exists only once a "
            "trial is sampled; index it (node[0]) or unpack the value inside your objective"
        )

    def __call__(self, *_: Any, **__: Any) -> Any:
        raise UnsupportedExpression(f"{self!r} is not callable; use it as a value in the space")


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


@dataclass(frozen=True, eq=False)
class Call(Node):
    """A function applied to nodes and constants: an operator, a ``scope`` function or a
    user function registered with ``scope.define``; evaluated by ``space_eval`` after the
    labels are sampled.

    Attributes:
        name: the function's name in ``scope`` (``"add"``, ``"exp"``, ``"foo"``).
        fn: the function itself (pickled with the space, so workers need no registry).
        args: positional arguments: nodes, constants, or containers of them.
        kwargs: keyword arguments, sorted by name.
        lazy: ``switch``-like: the first argument picks which of the others is evaluated.
        stochastic: the function draws random numbers: it takes ``rng=`` and gets the
            evaluation's generator when none is given.
    """

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    lazy: bool = False
    stochastic: bool = False

    # Identity decides equality (arguments may hold unhashable constants), as for Choice.
    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    @property
    def pos_args(self) -> list[Any]:
        """hyperopt's name for the positional arguments."""
        return list(self.args)

    @property
    def named_args(self) -> list[list[Any]]:
        """hyperopt's name for the keyword arguments: ``[[name, value], ...]``."""
        return [[k, v] for k, v in self.kwargs]

    def __repr__(self) -> str:
        return expr_text(self)


@dataclass(frozen=True, eq=False)
class Literal(Node):
    """A constant made a node by ``as_apply``, so that it can be indexed by a node
    (``as_apply([1, 2, 3])[hp.randint('i', 3)]``)."""

    value: Any

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return expr_text(self)


# The operators' functions and how they print: (function, text template).
_BINARY: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
    "add": (operator.add, "+"), "sub": (operator.sub, "-"), "mul": (operator.mul, "*"),
    "truediv": (operator.truediv, "/"), "floordiv": (operator.floordiv, "//"),
    "mod": (operator.mod, "%"), "pow": (operator.pow, "**"), "lt": (operator.lt, "<"),
    "le": (operator.le, "<="), "gt": (operator.gt, ">"), "ge": (operator.ge, ">="),
    "eq": (operator.eq, "=="), "ne": (operator.ne, "!="),
}
_UNARY: dict[str, tuple[Callable[[Any], Any], str]] = {
    "neg": (operator.neg, "-"), "pos": (operator.pos, "+"), "abs": (abs, "abs"),
}
OPERATORS: dict[str, Callable[..., Any]] = {
    **{k: f for k, (f, _) in _BINARY.items()}, **{k: f for k, (f, _) in _UNARY.items()},
    "getitem": operator.getitem,
}


def _op(name: str, *args: Any) -> Call:
    return Call(name, OPERATORS[name], args)


def expr_text(obj: Any, depth: int = 0) -> str:
    """Python-like text for a node or constant: ``(hp.uniform('x') - 3) ** 2``,
    ``exp(-hp.uniform('x'))``; used in error messages and space descriptions."""
    if depth > 20:
        return "..."
    if isinstance(obj, Call):
        a = [expr_text(x, depth + 1) for x in obj.args]
        if obj.name in _BINARY and len(a) == 2 and not obj.kwargs:
            return f"({a[0]} {_BINARY[obj.name][1]} {a[1]})"
        if obj.name in ("neg", "pos") and len(a) == 1:
            return f"({_UNARY[obj.name][1]}{a[0]})"
        if obj.name == "getitem" and len(a) == 2:
            return f"{a[0]}[{a[1]}]"
        kw = [f"{k}={expr_text(v, depth + 1)}" for k, v in obj.kwargs]
        return f"{obj.name}({', '.join(a + kw)})"
    if isinstance(obj, Literal):
        return expr_text(obj.value, depth + 1)
    if isinstance(obj, Cast):
        return f"{obj.to}({expr_text(obj.inner, depth + 1)})"
    if isinstance(obj, Param):
        return f"hp.{obj.kind}({obj.label!r})"
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{k!r}: {expr_text(v, depth + 1)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        inner = ", ".join(expr_text(v, depth + 1) for v in obj)
        return f"[{inner}]" if isinstance(obj, list) else f"({inner}{',' if len(obj) == 1 else ''})"
    text = repr(obj)
    return text if len(text) <= 60 else text[:59] + "…"


def is_finite_number(x: Any) -> bool:
    """True for a real, finite int or float (bools excluded: ``True`` is not a bound)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        return False  # a string such as "0" converts with float() but is not a bound
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
