"""``scope``: the functions a search space can apply to its labels, and ``as_apply``.

``scope.<name>(...)`` builds a ``Call`` node; nothing runs until ``space_eval`` has values for
the labels. The built-in names are hyperopt's deterministic functions (``int``, ``float``,
``exp``, ``log``, ``sqrt``, ``sin``, ``cos``, ``min``, ``max``, ``switch``, ``len``,
``getitem``, ``pos_args``, ``dict``, ...) and its random draws (``uniform``, ``normal``,
``randint``, ``one_of``, ...: unlabelled noise, never a search dimension). ``scope.define``
adds a user function::

    @scope.define
    def make_model(depth, lr):
        return Model(depth, lr)

    space = scope.make_model(hp.quniform("depth", 2, 8, 1), hp.loguniform("lr", -7, 0))
"""

from __future__ import annotations

import builtins
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from parzen.space import OPERATORS, Call, Cast, Literal, Node

__all__ = ["Apply", "Literal", "PyllImportError", "Scope", "as_apply", "scope"]

F = TypeVar("F", bound=Callable[..., Any])

Apply = Node
"""hyperopt's name for a node of a space: ``isinstance(hp.uniform('x', 0, 1), Apply)``."""


class PyllImportError(ImportError):
    """``scope.inject`` / ``scope.import_`` was asked for a name ``scope`` does not have."""


# ---- deterministic functions -----------------------------------------------------------

def pos_args(*args: Any) -> list[Any]:
    """Its arguments as a list."""
    return list(args)


def as_tuple(*args: Any) -> tuple[Any, ...]:
    """Its arguments as a tuple."""
    return tuple(args)


def as_dict(items: Any = (), **kwargs: Any) -> dict[Any, Any]:
    """``dict(items, **kwargs)``."""
    return dict(items, **kwargs)


def identity(obj: Any) -> Any:
    """Its argument."""
    return obj


def switch_index(pos: Any, n: int) -> int:
    """Which of ``n`` branches a ``switch`` selector picks."""
    i = int(pos)
    if not 0 <= i < n:
        raise IndexError(f"switch selector {pos!r} is outside 0..{n - 1}")
    return i


def call(fn: Callable[..., Any], args: Sequence[Any] = (),
         kwargs: Mapping[str, Any] | None = None) -> Any:
    """``fn(*args, **kwargs)``."""
    return fn(*args, **(kwargs or {}))


def call_method(obj: Any, methodname: str, *args: Any, **kwargs: Any) -> Any:
    """``getattr(obj, methodname)(*args, **kwargs)``."""
    return getattr(obj, methodname)(*args, **kwargs)


def str_join(s: str, seq: Sequence[Any]) -> str:
    """``s.join(seq)``."""
    return s.join(seq)


def repeat(n_times: int, obj: Any) -> list[Any]:
    """A list of ``n_times`` times ``obj``."""
    return [obj] * int(n_times)


def exp(a: Any) -> Any:
    """``numpy.exp``."""
    return np.exp(a)


def log(a: Any) -> Any:
    """``numpy.log``."""
    return np.log(a)


def sqrt(a: Any) -> Any:
    """``numpy.sqrt``."""
    return np.sqrt(a)


def sin(a: Any) -> Any:
    """``numpy.sin``."""
    return np.sin(a)


def cos(a: Any) -> Any:
    """``numpy.cos``."""
    return np.cos(a)


def tan(a: Any) -> Any:
    """``numpy.tan``."""
    return np.tan(a)


def array_sum(x: Any, axis: int | None = None) -> Any:
    """``numpy.sum``."""
    return np.sum(x, axis=axis)


def minimum(x: Any, y: Any) -> Any:
    """``numpy.minimum``."""
    return np.minimum(x, y)


def maximum(x: Any, y: Any) -> Any:
    """``numpy.maximum``."""
    return np.maximum(x, y)


def asarray(a: Any, dtype: Any = None) -> Any:
    """``numpy.asarray``."""
    return np.asarray(a, dtype=dtype)


# ---- random draws (unlabelled: evaluated per sample, never searched over) ----------------

def _generator(rng: Any) -> Any:
    return np.random.default_rng() if rng is None else rng


def _q(x: Any, q: float) -> Any:
    return np.round(np.asarray(x) / q) * q if np.ndim(x) else float(np.round(x / q) * q)


def uniform(low: float, high: float, rng: Any = None, size: Any = None) -> Any:
    """A uniform draw in ``[low, high)``."""
    return _generator(rng).uniform(low, high, size)


def quniform(low: float, high: float, q: float, rng: Any = None, size: Any = None) -> Any:
    """``round(uniform(low, high) / q) * q``."""
    return _q(uniform(low, high, rng, size), q)


def loguniform(low: float, high: float, rng: Any = None, size: Any = None) -> Any:
    """``exp(uniform(low, high))``."""
    return np.exp(uniform(low, high, rng, size))


def qloguniform(low: float, high: float, q: float, rng: Any = None,
                size: Any = None) -> Any:
    """``round(exp(uniform(low, high)) / q) * q``."""
    return _q(loguniform(low, high, rng, size), q)


def normal(mu: float, sigma: float, rng: Any = None, size: Any = None) -> Any:
    """A normal draw."""
    return _generator(rng).normal(mu, sigma, size)


def qnormal(mu: float, sigma: float, q: float, rng: Any = None, size: Any = None) -> Any:
    """``round(normal(mu, sigma) / q) * q``."""
    return _q(normal(mu, sigma, rng, size), q)


def lognormal(mu: float, sigma: float, rng: Any = None, size: Any = None) -> Any:
    """``exp(normal(mu, sigma))``."""
    return np.exp(normal(mu, sigma, rng, size))


def qlognormal(mu: float, sigma: float, q: float, rng: Any = None, size: Any = None) -> Any:
    """``round(exp(normal(mu, sigma)) / q) * q``."""
    return _q(lognormal(mu, sigma, rng, size), q)


def randint(low: int, high: int | None = None, rng: Any = None, size: Any = None) -> Any:
    """An integer in ``[0, low)``, or in ``[low, high)`` when ``high`` is given."""
    lo, hi = (0, low) if high is None else (low, high)
    gen = _generator(rng)
    draw = getattr(gen, "integers", None) or gen.randint
    return draw(lo, hi, size)


def categorical(p: Sequence[float], rng: Any = None, size: Any = None) -> Any:
    """An index drawn with probabilities ``p``."""
    w = np.asarray(p, dtype=float)
    return _generator(rng).choice(len(w), size=size, p=w / w.sum())


_RANDOM: dict[str, Callable[..., Any]] = {
    f.__name__: f for f in (uniform, quniform, loguniform, qloguniform, normal, qnormal,
                            lognormal, qlognormal, randint, categorical)
}

_DETERMINISTIC: dict[str, Callable[..., Any]] = {
    **OPERATORS,
    "div": operator.truediv,
    "pow": operator.pow,
    "exp": exp, "log": log, "sqrt": sqrt, "sin": sin, "cos": cos, "tan": tan,
    "sum": array_sum, "minimum": minimum, "maximum": maximum, "asarray": asarray,
    "min": builtins.min, "max": builtins.max, "len": builtins.len, "list": builtins.list,
    "tuple": as_tuple, "dict": as_dict, "range": builtins.range, "getattr": builtins.getattr,
    "pos_args": pos_args, "identity": identity, "call": call, "call_method": call_method,
    "call_method_pure": call_method, "str_join": str_join, "repeat": repeat,
}


class _Builder:
    """``scope.<name>``: calling it builds the ``Call`` node; ``.fn`` is the function."""

    __slots__ = ("fn", "lazy", "name", "stochastic")

    def __init__(self, name: str, fn: Callable[..., Any], lazy: bool = False,
                 stochastic: bool = False) -> None:
        self.name = name
        self.fn = fn
        self.lazy = lazy
        self.stochastic = stochastic

    def __call__(self, *args: Any, **kwargs: Any) -> Call:
        return Call(self.name, self.fn, tuple(args), tuple(sorted(kwargs.items())),
                    lazy=self.lazy, stochastic=self.stochastic)

    def __repr__(self) -> str:
        return f"<scope.{self.name}>"


class Scope:
    """hyperopt's symbol table: ``scope.exp(node)``, ``scope.switch(i, a, b)``,
    ``@scope.define`` for user functions."""

    def __init__(self) -> None:
        self._entries: dict[str, _Builder] = {}
        self._builtin: set[str] = set()
        for name, fn in _DETERMINISTIC.items():
            self._add(_Builder(name, fn), builtin=True)
        for name, fn in _RANDOM.items():
            self._add(_Builder(name, fn, stochastic=True), builtin=True)

    def _add(self, entry: _Builder, builtin: bool = False) -> None:
        self._entries[entry.name] = entry
        if builtin:
            self._builtin.add(entry.name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._entries[name]
        except KeyError:
            raise AttributeError(
                f"scope has no function {name!r}: register yours with @scope.define (a "
                "top-level function, so that spaces pickle), or use one of "
                f"{sorted(self._entries)}"
            ) from None

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._entries))

    # -- casts: kept as Cast nodes, which the space descriptions know -------------------

    def int(self, arg: Any) -> Any:
        """Cast the value to ``int`` (truncating) when the space is evaluated."""
        return Cast(arg, "int") if isinstance(arg, Node) else builtins.int(arg)

    def float(self, arg: Any) -> Any:
        """Cast the value to ``float`` when the space is evaluated."""
        return Cast(arg, "float") if isinstance(arg, Node) else builtins.float(arg)

    # -- control flow ----------------------------------------------------------------------

    def switch(self, pos: Any, *args: Any) -> Call:
        """``args[pos]``, evaluating only the branch ``pos`` picks."""
        return Call("switch", switch_index, (pos, *args), lazy=True)

    def one_of(self, *args: Any) -> Call:
        """One of ``args`` at random (unlabelled: not a search dimension; use
        ``hp.choice`` for one the search should learn)."""
        pick = Call("randint", randint, (len(args),), stochastic=True)
        return Call("one_of", switch_index, (pick, *args), lazy=True)

    def choice(self, args: Sequence[Any]) -> Call:
        """``one_of(*args)``."""
        return self.one_of(*args)

    # -- user functions --------------------------------------------------------------------

    def define(self, f: F, o_len: Any = None, pure: bool = False) -> F:
        """Register ``f`` as ``scope.<f.__name__>`` and return it unchanged (a decorator).

        Raises:
            ValueError: the name is one of scope's own functions, or another function
                already has it.
        """
        name = getattr(f, "__name__", None)
        if not callable(f) or not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"scope.define takes a named function, got {f!r}")
        old = self._entries.get(name)
        if old is not None and old.fn is not f:
            if name in self._builtin or name in ("int", "float", "switch", "one_of", "choice"):
                raise ValueError(f"scope.{name} is one of scope's own functions; give "
                                 f"{f!r} another name")
            if _qualified(old.fn) != _qualified(f):
                raise ValueError(f"scope.{name} is already {_qualified(old.fn)}; give "
                                 f"{_qualified(f)} another name or scope.undefine it first")
            # The same function defined again (a re-run notebook cell, a reloaded module).
        if name in ("int", "float", "switch", "one_of", "choice", "define", "define_pure",
                    "define_if_new", "define_info", "undefine", "inject", "import_"):
            raise ValueError(f"scope.{name} is one of scope's own names; rename {f!r}")
        self._add(_Builder(name, f))
        return f

    def define_pure(self, f: F) -> F:
        """``define`` for a function without side effects (the same to parzen)."""
        return self.define(f, pure=True)

    def define_if_new(self, f: F, o_len: Any = None, pure: bool = False) -> F:
        """``define``, silent when ``f`` is already registered under its name."""
        old = self._entries.get(getattr(f, "__name__", ""))
        if old is not None and old.fn is f:
            return f
        return self.define(f, o_len, pure)

    def define_info(self, o_len: Any = None, pure: bool = False) -> Callable[[F], F]:
        """A ``define`` decorator taking hyperopt's options (which parzen does not need)."""
        def deco(f: F) -> F:
            return self.define(f, o_len, pure)
        return deco

    def undefine(self, f: Callable[..., Any] | str) -> None:
        """Remove a user function from ``scope``."""
        name = f if isinstance(f, str) else getattr(f, "__name__", "")
        if name in self._builtin:
            raise ValueError(f"scope.{name} is one of scope's own functions")
        del self._entries[name]

    def inject(self, *args: str, **kwargs: str) -> dict[str, Any]:
        """``{name: scope.<name>}`` for the names given (keyword: ``alias=name``)."""
        out: dict[str, Any] = {}
        for alias, name in [(a, a) for a in args] + list(kwargs.items()):
            try:
                out[alias] = getattr(self, name)
            except AttributeError:
                raise PyllImportError(name) from None
        return out

    def import_(self, globals_: dict[str, Any], *args: str, **kwargs: str) -> None:
        """Put ``scope``'s functions in a namespace: ``scope.import_(globals(), 'exp')``."""
        globals_.update(self.inject(*args, **kwargs))


def _qualified(f: Callable[..., Any]) -> str:
    return f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', repr(f))}"


scope = Scope()


def _has_node(obj: Any, depth: int = 0) -> bool:
    if isinstance(obj, Node):
        return True
    if depth > 50:
        return False
    if isinstance(obj, Mapping):
        return any(_has_node(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_has_node(v, depth + 1) for v in obj)
    return False


def as_apply(obj: Any) -> Node:
    """``obj`` as a node: nodes stay, containers holding nodes become expressions that build
    the container, anything else a ``Literal``."""
    if isinstance(obj, Node):
        return obj
    if _has_node(obj):
        if isinstance(obj, list):
            return Call("pos_args", pos_args, tuple(obj))
        if isinstance(obj, tuple):
            return Call("tuple", as_tuple, obj)
        return Call("dict", as_dict, (obj,))
    return Literal(obj)
