"""Compile a nested search space (dicts, lists, tuples, nodes, constants) into a ``Space``.

A ``Space`` lists its parameters parents-first and knows, for each one, under which choices it
is active. Samplers and stores see only this flat view; ``space_eval`` walks the original
structure to build the value handed to the objective.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from parzen.exceptions import DuplicateLabel, InvalidTrial, UnsupportedExpression
from parzen.space._nodes import (
    Call,
    Cast,
    Choice,
    Literal,
    Normal,
    Param,
    RandInt,
    Uniform,
    expr_text,
)

# A conjunction of (choice label, option index) requirements; a parameter is active when any
# of its conjunctions holds. The empty conjunction means "always active".
Condition = tuple[tuple[str, int], ...]
Assignment = Mapping[str, Any]


@dataclass(frozen=True)
class Space:
    """The flat, validated view of a search space.

    Attributes:
        structure: the user's original (nested) space, used by ``space_eval``.
        params: every parameter, parents before children.
        conditions: for each label, the conjunctions under which it is active.
    """

    structure: Any
    params: tuple[Param, ...]
    conditions: Mapping[str, tuple[Condition, ...]]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(p.label for p in self.params)

    def param(self, label: str) -> Param:
        for p in self.params:
            if p.label == label:
                return p
        raise KeyError(label)

    def is_conditional(self) -> bool:
        return any(() not in conds for conds in self.conditions.values())

    def active_labels(self, assignment: Assignment) -> list[str]:
        """Labels active under ``assignment`` (choices are read as option indices)."""
        return [p.label for p in self.params if self.is_active(p.label, assignment)]

    def is_active(self, label: str, assignment: Assignment) -> bool:
        for conj in self.conditions[label]:
            if all(_index_of(assignment.get(parent)) == idx for parent, idx in conj):
                return True
        return False

    def fingerprint(self) -> str:
        """A stable hash of the space's structure; equal spaces give equal fingerprints."""
        cached: str | None = self.__dict__.get("_fingerprint")
        if cached is None:
            blob = json.dumps(describe(self.structure), sort_keys=True, default=repr)
            cached = hashlib.sha256(blob.encode()).hexdigest()[:16]
            object.__setattr__(self, "_fingerprint", cached)  # frozen: cache by hand
        return cached

    def check_assignment(self, assignment: Assignment) -> dict[str, Any]:
        """Validate a user-given point (``points_to_evaluate``) and return its active values.

        Raises:
            InvalidTrial: a label is unknown, an active label is missing, or a value is out of
                its distribution's support.
        """
        unknown = sorted(set(assignment) - set(self.labels))
        if unknown:
            raise InvalidTrial(
                f"point {dict(assignment)!r} has labels not in the space: {unknown}; "
                f"the space's labels are {list(self.labels)}"
            )
        out: dict[str, Any] = {}
        for p in self.params:
            if not self.is_active(p.label, out):
                continue
            if p.label not in assignment:
                raise InvalidTrial(
                    f"point {dict(assignment)!r} is missing the active label {p.label!r}"
                )
            out[p.label] = _check_value(p, assignment[p.label])
        return out


def _index_of(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _check_value(p: Param, v: Any) -> Any:
    def bad(why: str) -> InvalidTrial:
        return InvalidTrial(f"value {v!r} for {p.kind}({p.label!r}) is outside the space: {why}")

    if isinstance(p, Choice):
        idx = _index_of(v)
        if idx is None or idx != v or not 0 <= idx < len(p.options):
            raise bad(f"a choice takes the option *index* 0..{len(p.options) - 1}")
        return idx
    if isinstance(p, RandInt):
        idx = _index_of(v)
        if idx is None or idx != v or not p.low <= idx < p.high:
            raise bad(f"randint takes an integer in [{p.low}, {p.high})")
        return idx
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise bad("expected a number") from None
    if not math.isfinite(x):
        raise bad("expected a finite number")
    if isinstance(p, Uniform):
        lo, hi = (math.exp(p.low), math.exp(p.high)) if p.log else (p.low, p.high)
        if p.q is not None:
            # Rounding to the grid can step just past a bound.
            lo, hi = lo - p.q / 2, hi + p.q / 2
        if not lo - 1e-9 * abs(lo) <= x <= hi + 1e-9 * abs(hi):
            raise bad(f"expected a value in [{lo:g}, {hi:g}]")
    elif isinstance(p, Normal) and p.log and x < 0:
        raise bad("a lognormal value is >= 0")
    return x


def compile_space(structure: Any) -> Space:
    """Validate ``structure`` and return its flat ``Space``.

    Raises:
        DuplicateLabel: two distribution nodes share a label (hyperopt's rule: a label names
            one node; the same node may appear in several places).
        UnsupportedExpression: the space holds a hyperopt pyll graph or another foreign node.
    """
    if isinstance(structure, Space):
        return structure
    params: dict[str, Param] = {}
    conds: dict[str, list[Condition]] = {}

    # Expressions already walked under a condition: a shared subexpression is walked once.
    seen_nodes: set[tuple[int, Condition]] = set()

    def walk(obj: Any, cond: Condition) -> None:
        if isinstance(obj, Param):
            seen = params.get(obj.label)
            if seen is None:
                params[obj.label] = obj
                conds[obj.label] = [cond]
            elif seen is obj:
                # The same node reached by another path: active under either path.
                if cond in conds[obj.label]:
                    return
                conds[obj.label].append(cond)
            else:
                # As in hyperopt, a label names one node: two distributions built separately
                # under one label are an error even when their arguments agree.
                raise DuplicateLabel(
                    f"label {obj.label!r} is used by two different distributions "
                    f"({seen.kind} and {obj.kind}), {_show(seen)} and {_show(obj)}; a label "
                    "names one node, as in hyperopt: give each distribution its own label, or "
                    "build it once and use that object in both places"
                )
            if isinstance(obj, Choice):
                for i, opt in enumerate(obj.options):
                    walk(opt, cond + ((obj.label, i),))
        elif isinstance(obj, Mapping):
            for v in obj.values():
                walk(v, cond)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v, cond)
        elif isinstance(obj, Call):
            key = (id(obj), cond)
            if key in seen_nodes:
                return
            seen_nodes.add(key)
            # Labels inside a switch's branches stay unconditional: the samplers draw them
            # every time and space_eval evaluates only the chosen branch.
            for a in obj.args:
                walk(a, cond)
            for _, v in obj.kwargs:
                walk(v, cond)
        elif isinstance(obj, Cast):
            walk(obj.inner, cond)
        elif isinstance(obj, Literal):
            walk(obj.value, cond)
        elif _is_foreign_graph(obj):
            raise UnsupportedExpression(
                f"the space contains {type(obj).__module__}.{type(obj).__name__}, a hyperopt "
                "pyll node; build the space with parzen.hp and parzen.pyll.scope instead "
                "(change the import lines, the calls stay the same)"
            )

    walk(structure, ())
    return Space(
        structure=structure,
        params=tuple(params.values()),
        conditions={k: _simplify(v) for k, v in conds.items()},
    )


def _show(p: Param) -> str:
    d = {k: v for k, v in p.to_dict().items() if k not in ("kind", "label") and v is not None}
    return f"hp.{p.kind}({p.label!r}, " + ", ".join(f"{k}={v!r}" for k, v in d.items()) + ")"


def _simplify(conjs: list[Condition]) -> tuple[Condition, ...]:
    # An unconditional occurrence makes the others irrelevant.
    if () in conjs:
        return ((),)
    return tuple(conjs)


def _is_foreign_graph(obj: Any) -> bool:
    mod = type(obj).__module__ or ""
    return mod.startswith("hyperopt")


def describe(obj: Any) -> Any:
    """A JSON-able description of a space's structure, for fingerprints and experiment docs."""
    if isinstance(obj, Cast):
        return {"cast": obj.to, "of": describe(obj.inner)}
    if isinstance(obj, Call):
        fn = obj.fn
        return {"call": obj.name,
                "fn": f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', obj.name)}",
                "args": [describe(a) for a in obj.args],
                "kwargs": {k: describe(v) for k, v in obj.kwargs},
                "text": expr_text(obj)}
    if isinstance(obj, Literal):
        return describe(obj.value)
    if isinstance(obj, Choice):
        d = obj.to_dict()
        d["options"] = [describe(o) for o in obj.options]
        return d
    if isinstance(obj, Param):
        return obj.to_dict()
    if isinstance(obj, Mapping):
        return {"dict": {str(k): describe(v) for k, v in obj.items()}}
    if isinstance(obj, (list, tuple)):
        return {type(obj).__name__: [describe(v) for v in obj]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return {"const": f"{type(obj).__module__}.{type(obj).__qualname__}", "repr": repr(obj)[:200]}
