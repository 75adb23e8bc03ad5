"""What every pruner sees and answers: learning curves in, "stop this trial" out.

A pruner is a small frozen dataclass of settings with one pure decision rule. Being pure is
what lets the rule run wherever a report lands (the coordinator's process for ``Trials``
and ``ParallelTrials``, the worker for ``MongoTrials``): every place that holds the same
reported values reaches the same decision. Being settings only is what lets a pruner travel
in the experiment document (``to_dict``/``pruner_from_dict``) to workers on other machines.

Decisions use reported values only: a peer takes part in a comparison at step ``s`` once it
has reported a step at or past ``s``, never by extrapolating its curve.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from parzen.exceptions import ConfigError
from parzen.trial import Trial


@dataclass(frozen=True)
class Curve:
    """One trial's learning curve (its latest attempt's reports), steps increasing.

    Attributes:
        tid: the trial.
        steps: the reported steps, increasing.
        losses: the loss at each step.
    """

    tid: int
    steps: tuple[int, ...]
    losses: tuple[float, ...]

    @classmethod
    def of(cls, trial: Trial) -> Curve:
        """The curve of ``trial``'s latest reporting attempt."""
        reports = trial.curve()
        return cls(trial.tid, tuple(r.step for r in reports), tuple(r.loss for r in reports))

    @property
    def last_step(self) -> int | None:
        return self.steps[-1] if self.steps else None

    def reached(self, step: float) -> bool:
        """Whether the trial has reported ``step`` or a later one."""
        return bool(self.steps) and self.steps[-1] >= step

    def at_rung(self, step: float) -> float | None:
        """The loss of the first report at or past ``step`` (None before it got there): the
        value a trial brings to a rung placed at ``step``."""
        for s, loss in zip(self.steps, self.losses, strict=True):
            if s >= step:
                return loss
        return None

    def best_until(self, step: float) -> float | None:
        """The lowest loss reported up to ``step``, once the trial has reached ``step``."""
        if not self.reached(step):
            return None
        upto = [loss for s, loss in zip(self.steps, self.losses, strict=True) if s <= step]
        # A curve whose first report is already past ``step`` brings that first value.
        return min(upto) if upto else self.losses[0]


class Pruner(abc.ABC):
    """A rule that stops hopeless trials from their reported losses.

    Subclasses are frozen dataclasses whose fields are their settings; they check them in
    ``__post_init__`` (a ``ConfigError`` naming the value) and set ``kind``.
    """

    kind: ClassVar[str]

    @abc.abstractmethod
    def decides_at(self, tid: int, previous: int | None, step: int) -> bool:
        """Whether a report at ``step`` (after one at ``previous``, None for the first) is a
        point where this rule may stop trial ``tid``; elsewhere it never does, and the
        peers' curves need not be read."""

    @abc.abstractmethod
    def should_prune(self, own: Curve, peers: Sequence[Curve]) -> bool:
        """Whether the trial of ``own``, which just reported its last step, should stop,
        given the other trials' curves (``peers``, every state, without ``own``)."""

    def to_dict(self) -> dict[str, Any]:
        """The settings, with ``kind``: what the experiment document carries to workers."""
        if not dataclasses.is_dataclass(self):
            raise ConfigError(f"{type(self).__name__} is not a dataclass: a pruner's fields "
                              "are its settings")
        return {"kind": self.kind, **dataclasses.asdict(self)}


_KINDS: dict[str, type[Pruner]] = {}


def register(cls: type[Pruner]) -> type[Pruner]:
    """Make ``cls`` readable by ``pruner_from_dict`` under ``cls.kind``."""
    _KINDS[cls.kind] = cls
    return cls


def pruner_from_dict(d: Mapping[str, Any] | None) -> Pruner | None:
    """The pruner ``to_dict`` described (None for None or ``{}``).

    Raises:
        ConfigError: an unknown kind (a worker older than the coordinator) or bad settings.
    """
    if not d:
        return None
    kind = d.get("kind")
    cls = _KINDS.get(str(kind))
    if cls is None:
        raise ConfigError(f"unknown pruner kind {kind!r} in the experiment's settings; this "
                          f"parzen knows {sorted(_KINDS)} (upgrade the workers)")
    fields = {k: v for k, v in d.items() if k != "kind"}
    return cls(**fields)


def check_pruner(pruner: Any, *, shipped: bool = False) -> Pruner | None:
    """``fmin``'s ``pruner`` argument, checked.

    Args:
        shipped: the pruner travels to workers in the experiment document (``MongoTrials``),
            so it must be one ``pruner_from_dict`` can rebuild.
    Raises:
        ConfigError: not a ``Pruner``, or a pruner workers cannot rebuild.
    """
    if pruner is None:
        return None
    if not isinstance(pruner, Pruner):
        raise ConfigError(f"pruner must be None or a parzen pruner such as "
                          f"parzen.pruners.AshaPruner(), got {pruner!r:.100}")
    if shipped and _KINDS.get(getattr(pruner, "kind", "")) is not type(pruner):
        raise ConfigError(
            f"pruner={pruner!r:.100}: MongoTrials sends the pruner's settings to the workers, "
            f"which rebuild only parzen's pruners ({', '.join(sorted(_KINDS))}); use one of "
            "them, or register yours with parzen.pruners.register on every worker too")
    return pruner
