"""``space_eval``: turn an assignment of raw trial values into the objective's argument."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parzen.exceptions import InvalidTrial
from parzen.space._compile import Space, compile_space
from parzen.space._nodes import Cast, Choice, Param, RandInt


def space_eval(space: Any, assignment: Mapping[str, Any]) -> Any:
    """Substitute the values of ``assignment`` into ``space``.

    Args:
        space: the search space (nested structure of ``hp`` nodes) or a compiled ``Space``.
        assignment: ``{label: value}``, with choice *indices*, as in ``fmin``'s argmin or a
            trial's ``misc.vals`` (one-element lists are accepted, as hyperopt accepts them).

    Returns:
        The space with every active node replaced by its value.

    Raises:
        InvalidTrial: an active label is missing from ``assignment`` or an index is out of range.
    """
    structure = space.structure if isinstance(space, Space) else space
    flat = {k: _scalar(v) for k, v in assignment.items()}
    return _evaluate(structure, flat)


def _scalar(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return v[0] if len(v) == 1 else None
    return v


def _evaluate(obj: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(obj, Cast):
        return obj.apply(_evaluate(obj.inner, values))
    if isinstance(obj, Param):
        if obj.label not in values or values[obj.label] is None:
            raise InvalidTrial(
                f"no value for active parameter {obj.label!r}; the assignment has "
                f"{sorted(values)}"
            )
        v = values[obj.label]
        if isinstance(obj, Choice):
            idx = int(v)
            if not 0 <= idx < len(obj.options):
                raise InvalidTrial(
                    f"choice {obj.label!r} has {len(obj.options)} options, index {idx} is "
                    "out of range (a choice's value is its option index)"
                )
            return _evaluate(obj.options[idx], values)
        if isinstance(obj, RandInt):
            return int(v)
        return float(v)
    if isinstance(obj, Mapping):
        return {k: _evaluate(v, values) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_evaluate(v, values) for v in obj)
    if isinstance(obj, list):
        return [_evaluate(v, values) for v in obj]
    return obj


__all__ = ["space_eval", "compile_space"]
