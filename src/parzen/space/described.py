"""Read a search space from its JSON description (``parzen.space.describe``).

The experiment document stores the space only as that description; the space itself travels
inside the signed objective payload, which the tools must not unpickle (it needs the signing
key and runs the user's pickled code). This module is what the tools use instead: the
parameters the description declares (label, distribution, choice options) and ``evaluate``,
``space_eval`` computed from the description, so that a choice shows its option's value rather
than its index.

Description grammar (what ``describe`` writes): a parameter is ``{"kind", "label", ...}``
(a choice adds ``"options"``), ``scope.int``/``scope.float`` is ``{"cast", "of"}``, an
expression is ``{"call", "fn", "args", "kwargs", "text"}`` (``text`` is Python-like:
``(10 ** hp.quniform('e'))``), containers
are ``{"dict": {...}}``, ``{"list": [...]}`` or ``{"tuple": [...]}``, JSON scalars are
themselves, and any other constant is ``{"const": type, "repr": text}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from parzen.exceptions import InvalidTrial
from parzen.space._nodes import OPERATORS

CHOICE_KINDS = ("choice", "pchoice")


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a described space.

    Attributes:
        label: the parameter's label.
        kind: ``"uniform"``, ``"qloguniform"``, ``"choice"``, ``"randint"``, ...; ``""`` when
            the space is unknown and only the trials' values are.
        options: a choice's option descriptions.
        cast: ``"int"`` or ``"float"`` when the parameter is wrapped in ``scope.int/float``.
        settings: the distribution's other arguments as described (``low``, ``high``, ``q``,
            ``probs``, ...), in the description's order; unset ones (None) are left out.
    """

    label: str
    kind: str = ""
    options: tuple[Any, ...] = ()
    cast: str | None = None
    settings: tuple[tuple[str, Any], ...] = ()

    @property
    def is_choice(self) -> bool:
        return self.kind in CHOICE_KINDS

    @property
    def is_log(self) -> bool:
        return "log" in self.kind

    @property
    def is_quantized(self) -> bool:
        return self.kind.startswith("q") or self.kind == "randint" or self.cast == "int"

    def option_labels(self, width: int = 24) -> list[str]:
        """A short text for each option of a choice (tick labels, table cells)."""
        return [shorten(short_text(o), width) for o in self.options]

    def distribution_text(self) -> str:
        """The distribution as a person reads it: ``uniform(low=0.0, high=1.0)``,
        ``choice(relu, tanh, {kind: leaky, slope: <slope>})``, ``int(quniform(...))``."""
        args = [short_text(o) for o in self.options]
        args += [f"{k}={value_text(v)}" for k, v in self.settings]
        text = f"{self.kind}({', '.join(args)})"
        return f"{self.cast}({text})" if self.cast else text


def params_of(desc: Any) -> dict[str, ParamInfo]:
    """The parameters of a description, parents before children (as ``compile_space``)."""
    out: dict[str, ParamInfo] = {}

    def walk(d: Any, cast: str | None) -> None:
        if isinstance(d, Mapping):
            if "cast" in d and "of" in d:
                walk(d["of"], str(d["cast"]))
            elif _is_call(d):
                for v in list(d.get("args") or []) + list((d.get("kwargs") or {}).values()):
                    walk(v, None)
            elif _is_param(d):
                label = str(d["label"])
                options = tuple(d.get("options") or ())
                settings = tuple((str(k), v) for k, v in d.items() if v is not None
                                 and k not in ("kind", "label", "options", "n_options"))
                out.setdefault(label, ParamInfo(label, str(d["kind"]), options, cast,
                                                settings))
                for o in options:
                    walk(o, None)
            elif len(d) == 1 and "dict" in d and isinstance(d["dict"], Mapping):
                for v in d["dict"].values():
                    walk(v, None)
            elif len(d) == 1 and ("list" in d or "tuple" in d):
                for v in next(iter(d.values())):
                    walk(v, None)

    walk(desc, None)
    return out


def evaluate(desc: Any, params: Mapping[str, Any]) -> Any:
    """``space_eval`` on a description: the objective's argument for ``params`` (raw trial
    values, a choice's value being its option index).

    Raises:
        InvalidTrial: an active parameter has no value, or a choice index is out of range.
    """
    if isinstance(desc, list):
        return [evaluate(v, params) for v in desc]
    if not isinstance(desc, Mapping):
        return desc
    if "cast" in desc and "of" in desc:
        value = evaluate(desc["of"], params)
        return int(value) if desc["cast"] == "int" else float(value)
    if _is_call(desc):
        return _evaluate_call(desc, params)
    if _is_param(desc):
        label = str(desc["label"])
        if params.get(label) is None:
            raise InvalidTrial(f"no value for active parameter {label!r}; the trial has "
                               f"{sorted(params)}")
        value = params[label]
        if desc["kind"] in CHOICE_KINDS:
            options = desc.get("options") or []
            idx = int(value)
            if not 0 <= idx < len(options):
                raise InvalidTrial(f"choice {label!r} has {len(options)} options, index {idx} "
                                   "is out of range")
            return evaluate(options[idx], params)
        return int(value) if desc["kind"] == "randint" else float(value)
    if "dict" in desc and len(desc) == 1:
        return {k: evaluate(v, params) for k, v in desc["dict"].items()}
    if "list" in desc and len(desc) == 1:
        return [evaluate(v, params) for v in desc["list"]]
    if "tuple" in desc and len(desc) == 1:
        return tuple(evaluate(v, params) for v in desc["tuple"])
    if "const" in desc:
        return desc.get("repr", desc["const"])
    return dict(desc)


def choice_value(info: ParamInfo, params: Mapping[str, Any]) -> Any:
    """The value a choice's selected option evaluates to (None when it cannot be told)."""
    try:
        return evaluate(info.options[int(params[info.label])], params)
    except (KeyError, IndexError, TypeError, ValueError, InvalidTrial):
        return None


def short_text(desc: Any) -> str:
    """Compact text for a described value: ``relu``, ``{kind: leaky, slope: <slope>}``."""
    if isinstance(desc, Mapping):
        if "cast" in desc and "of" in desc:
            return short_text(desc["of"])
        if _is_call(desc):
            return str(desc.get("text") or desc["call"])
        if _is_param(desc):
            return f"<{desc['label']}>"
        if "dict" in desc and len(desc) == 1:
            items = ", ".join(f"{k}: {short_text(v)}" for k, v in desc["dict"].items())
            return "{" + items + "}"
        for kind, (left, right) in (("list", "[]"), ("tuple", "()")):
            if kind in desc and len(desc) == 1:
                return left + ", ".join(short_text(v) for v in desc[kind]) + right
        if "const" in desc:
            return str(desc.get("repr", desc["const"]))
    return value_text(desc)


def value_text(value: Any) -> str:
    """A value as plain text: strings bare, floats in 6 significant digits, others as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def _is_call(d: Mapping[str, Any]) -> bool:
    return "call" in d and "text" in d and "args" in d


def _evaluate_call(desc: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """An operator or numpy function computed from the description; any other function (a
    user's, which the tools cannot run) is shown as the expression's text."""
    fn = OPERATORS.get(str(desc["call"])) if not desc.get("kwargs") else None
    if fn is None and str(desc["call"]) in _NUMPY:
        fn = getattr(np, str(desc["call"]))
    if fn is None:
        return desc["text"]
    try:
        return fn(*[evaluate(a, params) for a in desc["args"]])
    except (TypeError, ValueError, ArithmeticError, IndexError, KeyError):
        return desc["text"]


_NUMPY = ("exp", "log", "sqrt", "sin", "cos", "tan", "minimum", "maximum")


def _is_param(d: Mapping[str, Any]) -> bool:
    return "kind" in d and "label" in d and isinstance(d.get("label"), str)
