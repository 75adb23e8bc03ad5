"""``space_eval``: turn an assignment of raw trial values into the objective's argument.

The walk substitutes each label's value and evaluates the expressions around them
(``Call``): arguments first, then the function; a ``switch`` evaluates only the branch its
selector picks. A node reached twice in one walk is evaluated once, so an expression used in
two places (or a random draw) has one value per sample, as in a pyll graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from parzen.exceptions import ExpressionError, InvalidTrial
from parzen.space._compile import Space
from parzen.space._nodes import Call, Cast, Choice, Literal, Param, RandInt, expr_text


def space_eval(space: Any, assignment: Mapping[str, Any],
               rng: np.random.Generator | None = None) -> Any:
    """Substitute the values of ``assignment`` into ``space`` and evaluate its expressions.

    Args:
        space: the search space (nested structure of ``hp`` nodes) or a compiled ``Space``.
        assignment: ``{label: value}``, with choice *indices*, as in ``fmin``'s argmin or a
            trial's ``misc.vals`` (one-element lists are accepted, as hyperopt accepts them).
        rng: the generator for random ``scope`` functions given no ``rng=`` of their own
            (``scope.normal(0, 1)``); a fresh one when None.

    Returns:
        The space with every active node replaced by its value.

    Raises:
        InvalidTrial: an active label is missing from ``assignment`` or an index is out of range.
        ExpressionError: an expression raised for these values (the message names it).
    """
    structure = space.structure if isinstance(space, Space) else space
    flat = {k: _scalar(v) for k, v in assignment.items()}
    return _Walk(flat, rng).value(structure)


def _scalar(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return v[0] if len(v) == 1 else None
    return v


class _Walk:
    """One evaluation: the values, the memo of evaluated expressions, the generator."""

    __slots__ = ("memo", "rng", "values")

    def __init__(self, values: Mapping[str, Any], rng: np.random.Generator | None) -> None:
        self.values = values
        self.rng = rng
        self.memo: dict[int, Any] = {}

    def value(self, obj: Any) -> Any:
        if isinstance(obj, Param):
            return self.param(obj)
        if isinstance(obj, Mapping):
            return {k: self.value(v) for k, v in obj.items()}
        if isinstance(obj, tuple):
            return tuple(self.value(v) for v in obj)
        if isinstance(obj, list):
            return [self.value(v) for v in obj]
        if isinstance(obj, Call):
            return self.call(obj)
        if isinstance(obj, Cast):
            inner = self.value(obj.inner)
            try:
                return obj.apply(inner)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ExpressionError(
                    f"{expr_text(obj)} failed for {inner!r}: {type(exc).__name__}: {exc}"
                ) from exc
        if isinstance(obj, Literal):
            return obj.value
        return obj

    def param(self, obj: Param) -> Any:
        v = self.values.get(obj.label)
        if v is None:
            raise InvalidTrial(
                f"no value for active parameter {obj.label!r}; the assignment has "
                f"{sorted(self.values)}"
            )
        if isinstance(obj, Choice):
            idx = int(v)
            if not 0 <= idx < len(obj.options):
                raise InvalidTrial(
                    f"choice {obj.label!r} has {len(obj.options)} options, index {idx} is "
                    "out of range (a choice's value is its option index)"
                )
            return self.value(obj.options[idx])
        if isinstance(obj, RandInt):
            return int(v)
        return float(v)

    def call(self, node: Call) -> Any:
        key = id(node)
        if key in self.memo:
            return self.memo[key]
        if node.lazy:
            selector = self.value(node.args[0])
            try:
                index = node.fn(selector, len(node.args) - 1)
            except Exception as exc:
                raise _failed(node, exc) from exc
            out = self.value(node.args[1 + index])
        else:
            args = [self.value(a) for a in node.args]
            kwargs = {k: self.value(v) for k, v in node.kwargs}
            if node.stochastic and kwargs.get("rng") is None:
                if self.rng is None:
                    self.rng = np.random.default_rng()
                kwargs["rng"] = self.rng
            try:
                out = node.fn(*args, **kwargs)
            except ExpressionError:
                raise
            except Exception as exc:  # the user's function: anything can fail
                raise _failed(node, exc, args, kwargs) from exc
        self.memo[key] = out
        return out


def _failed(node: Call, exc: BaseException, args: list[Any] | None = None,
            kwargs: Mapping[str, Any] | None = None) -> ExpressionError:
    shown = ""
    if args is not None:
        parts = [_short(a) for a in args]
        parts += [f"{k}={_short(v)}" for k, v in (kwargs or {}).items() if k != "rng"]
        shown = f" (called as {node.name}({', '.join(parts)}))"
    return ExpressionError(f"the space's expression {expr_text(node)} raised "
                           f"{type(exc).__name__}: {exc}{shown}")


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:39] + "…"


__all__ = ["space_eval"]
