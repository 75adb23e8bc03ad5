"""``Domain``: the objective bound to its space, and validation of what the objective returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from parzen.exceptions import InvalidLoss, InvalidResult, InvalidResultStatus
from parzen.reporting import handle_for, wants_handle
from parzen.space import Param, Space, compile_space, space_eval
from parzen.trial import STATUS_FAIL, STATUS_NEW, STATUS_OK

Objective = Callable[..., Any]


class Domain:
    """An objective and its search space (hyperopt's ``Domain``).

    Args:
        fn: the objective, called with ``space_eval(expr, params)``.
        expr: the search space.
        workdir, pass_expr_memo_ctrl: hyperopt's; parzen has no use for them
            (``pass_expr_memo_ctrl`` is refused by ``fmin``).
        name: a name for the domain (hyperopt's test domains carry one).
        loss_target: the best loss reachable, when known.

    Attributes:
        fn: the user's objective.
        expr: the user's space, as given.
        space: the compiled, validated ``Space``.
        params: ``{label: distribution node}``, parents first.
    """

    def __init__(self, fn: Objective, expr: Any, workdir: str | None = None,
                 pass_expr_memo_ctrl: bool | None = None, name: str | None = None,
                 loss_target: float | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"the objective must be callable, got {fn!r}")
        self.fn = fn
        self.expr = expr
        self.workdir = workdir
        self.pass_expr_memo_ctrl = pass_expr_memo_ctrl
        self.name = name
        self.loss_target = loss_target
        self.space: Space = compile_space(expr)
        # The fingerprint names the experiment in stores and keys the samplers' caches; taken
        # here, once per fmin call, it stays off the suggestion path (~50 us on a 10-D space).
        self.space.fingerprint()
        # ``objective(params, trial)`` gets a trial handle (``parzen.reporting``).
        self._pass_handle = wants_handle(fn)

    @property
    def params(self) -> dict[str, Param]:
        return {p.label: p for p in self.space.params}

    def evaluate(self, params: Mapping[str, Any], tid: int | None = None) -> dict[str, Any]:
        """Call the objective at ``params`` and return its validated result dict.

        Raises:
            ExpressionError: an expression of the space raised for these values.
        """
        point = space_eval(self.space, params)
        value = self.fn(point, handle_for(tid)) if self._pass_handle else self.fn(point)
        return normalize_result(value, tid)

    def memo_from_config(self, config: Mapping[str, Any]) -> Any:
        """The objective's argument for ``config`` (hyperopt-compatible helper)."""
        return space_eval(self.space, config)

    # hyperopt's readers of a result dict (``Trials.average_best_error(domain)`` uses them).

    def loss(self, result: Mapping[str, Any], config: Any = None) -> float | None:
        """The result's loss (None when it has none)."""
        loss = result.get("loss")
        return None if loss is None else float(loss)

    def loss_variance(self, result: Mapping[str, Any], config: Any = None) -> float:
        """The result's ``loss_variance`` (0 when not given)."""
        return float(result.get("loss_variance", 0.0))

    def true_loss(self, result: Mapping[str, Any], config: Any = None) -> float | None:
        """The result's ``true_loss``, else its loss."""
        true = result.get("true_loss")
        return self.loss(result, config) if true is None else float(true)

    def true_loss_variance(self, result: Mapping[str, Any], config: Any = None) -> float:
        """The result's ``true_loss_variance`` (0 when not given)."""
        return float(result.get("true_loss_variance", 0.0))

    def status(self, result: Mapping[str, Any], config: Any = None) -> str:
        """The result's status."""
        return str(result["status"])

    def new_result(self) -> dict[str, Any]:
        """The result of a trial not yet run."""
        return {"status": STATUS_NEW}

    def short_str(self) -> str:
        return f"Domain{{{self.name or getattr(self.fn, '__name__', 'fn')}}}"


def _trial_name(tid: int | None) -> str:
    return f"trial {tid}" if tid is not None else "the trial"


def normalize_result(value: Any, tid: int | None = None) -> dict[str, Any]:
    """Turn an objective's return value into a result dict with a float ``loss``.

    A bare number means ``{"loss": value, "status": "ok"}``. A dict must carry ``status``
    (``STATUS_OK`` or ``STATUS_FAIL``); with status ok it must carry a numeric ``loss``.
    Extra keys are kept; numpy scalars become Python numbers.

    A NaN or infinite loss is a result, as in hyperopt: recorded with status ok, in every
    mode. It is never the best (``Trial.loss`` is None for it), and samplers count the point
    as a failed one (``Trial.failed_here``).

    Raises:
        InvalidResult: the value is neither a number nor a dict.
        InvalidResultStatus: the dict's status is missing or unknown.
        InvalidLoss: status ok with a missing or non-numeric loss.
    """
    who = _trial_name(tid)
    if isinstance(value, (bool, np.bool_)):
        raise InvalidResult(
            f"the objective returned {value!r} for {who}; return a float loss or a dict "
            "like {'loss': 0.12, 'status': STATUS_OK}"
        )
    if isinstance(value, (int, float, np.integer, np.floating)):
        return {"loss": float(value), "status": STATUS_OK}
    if not isinstance(value, Mapping):
        raise InvalidResult(
            f"the objective returned {type(value).__name__} {value!r:.80} for {who}; return a "
            "float loss or a dict like {'loss': 0.12, 'status': STATUS_OK}"
        )
    result = {str(k): _plain(v) for k, v in value.items()}
    status = result.get("status")
    if status not in (STATUS_OK, STATUS_FAIL):
        raise InvalidResultStatus(
            f"the objective's result for {who} has status {status!r}; use 'status': STATUS_OK "
            "or STATUS_FAIL (from parzen import STATUS_OK, STATUS_FAIL)"
        )
    if status == STATUS_OK:
        raw_loss = result.get("loss")
        if raw_loss is None:
            raise InvalidLoss(
                f"the objective's result for {who} has status ok but no 'loss' key: "
                f"{sorted(result)}; add 'loss': <float>"
            )
        if isinstance(raw_loss, bool) or not isinstance(raw_loss, (int, float)):
            raise InvalidLoss(
                f"the objective's result for {who} has status ok and loss={raw_loss!r}; the loss "
                "must be a number (use 'status': STATUS_FAIL for a failed evaluation)"
            )
        result["loss"] = float(raw_loss)
    return result


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v
