"""The parzen error tree.

::

    ParzenError
    ├── SpaceError ── DuplicateLabel, InvalidDistribution, UnsupportedExpression,
    │                 InvalidAnnotatedParameter
    ├── TrialError ── InvalidTrial, InvalidResultStatus, InvalidLoss, ExpressionError,
    │                 InvalidReport, InvalidResult ── ResultTooLarge
    ├── StoreError ── StoreUnavailable, TrialNotFound, ExperimentLocked,
    │                 SpaceChanged, UnreadableTrials
    ├── PayloadError ── PayloadSignatureError, PayloadTooLarge, ObjectiveNotPicklable,
    │                   ObjectiveUnloadable
    ├── ConfigError
    ├── ReportOutsideTrial
    └── AllTrialsFailed ── NoTrialFinished

Every error is a ``ParzenError``; the ones a user can cause by passing a wrong value are also
``ValueError`` or ``TypeError`` so that code written against hyperopt keeps catching them.
Messages name the offending value and say how to fix it. hyperopt's names are here too:
``BadSearchSpace`` is ``SpaceError``, and ``DuplicateLabel``, ``InvalidTrial``,
``InvalidResultStatus``, ``InvalidLoss``, ``AllTrialsFailed`` and
``InvalidAnnotatedParameter`` keep hyperopt's meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ParzenError(Exception):
    """Base class of every error parzen raises on purpose."""


class SpaceError(ParzenError, ValueError):
    """A search space is malformed; raised when the space is built."""


class DuplicateLabel(SpaceError):
    """Two different distributions in one space share a label."""


class InvalidDistribution(SpaceError):
    """A distribution's arguments are out of range or of the wrong type."""


class UnsupportedExpression(SpaceError):
    """The space uses a pyll feature parzen deliberately does not interpret."""


class InvalidAnnotatedParameter(SpaceError):
    """``fmin(fn, space="annotated")``: a parameter of ``fn`` is not annotated with a space
    node (``x: hp.uniform('x', 0, 1)``)."""


BadSearchSpace = SpaceError
"""hyperopt's name for a malformed search space."""


class TrialError(ParzenError, ValueError):
    """A trial or its result is malformed."""


class InvalidTrial(TrialError):
    """A trial document or assignment does not match the space."""


class InvalidResultStatus(TrialError):
    """An objective returned a status other than STATUS_OK or STATUS_FAIL."""


class InvalidLoss(TrialError):
    """An objective reported status ok with a missing or non-finite loss."""


class InvalidResult(TrialError):
    """An objective returned something that is neither a number nor a result dict."""


class ResultTooLarge(InvalidResult):
    """A result is larger than the store can hold (MongoDB's 16 MB document limit)."""


class ExpressionError(TrialError):
    """An expression of the space (arithmetic, a ``scope`` function) raised for one sample:
    that trial's error, with the expression named."""


class InvalidReport(TrialError):
    """``parzen.report(loss, step)`` with a non-finite loss or a step that does not increase."""


class ReportOutsideTrial(ParzenError, RuntimeError):
    """``parzen.report`` was called while no trial runs (outside ``fmin``'s objective)."""


class StoreError(ParzenError):
    """The trial store failed or refused an operation."""


class StoreUnavailable(StoreError):
    """The store's backend (MongoDB) could not be reached."""


class TrialNotFound(StoreError, KeyError):
    """No trial with that tid exists in the experiment."""


class ExperimentLocked(StoreError):
    """Another live coordinator holds the experiment's driver lease."""


class SpaceChanged(StoreError):
    """A resumed experiment's space or objective differs from the stored one."""


@dataclass(frozen=True)
class UnreadableDocument:
    """A trial document that cannot be read as a trial.

    Attributes:
        exp_key: the experiment it claims to belong to.
        doc_id: its ``_id`` as mongosh writes it: ``ObjectId("...")`` or a JSON value.
        reason: what is wrong with it, naming the field and the value.
    """

    exp_key: str
    doc_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.exp_key!r} _id {self.doc_id}: {self.reason}"


def unreadable_fix(documents: Sequence[UnreadableDocument]) -> str:
    """How to mend ``documents``: the mongosh command that removes them."""
    ids = ", ".join(dict.fromkeys(d.doc_id for d in documents))
    return (f"Correct the field named, or delete the documents (mongosh: "
            f"db.trials.deleteMany({{_id: {{$in: [{ids}]}}}}))")


class UnreadableTrials(StoreError):
    """Trial documents in the store cannot be read as trials: edited by hand, or written by
    another program. The message names each by its ``_id`` and says how to mend it.

    Attributes:
        documents: the documents, with what is wrong with each.
        refusal: what was refused because of them (``"refusing to resume 'mnist'"``), or "".
    """

    def __init__(self, documents: Sequence[UnreadableDocument], refusal: str = "") -> None:
        # The arguments are kept as given, so the exception pickles and unpickles.
        super().__init__(tuple(documents), refusal)
        self.documents: tuple[UnreadableDocument, ...] = tuple(documents)
        self.refusal = refusal

    def __str__(self) -> str:
        n = len(self.documents)
        keys = sorted({d.exp_key for d in self.documents})
        head = (f"{self.refusal + ': ' if self.refusal else ''}"
                f"{n} trial document{'s' if n != 1 else ''} of "
                f"{', '.join(repr(k) for k in keys)} cannot be read: ")
        return head + "; ".join(str(d) for d in self.documents) + ". " + \
            unreadable_fix(self.documents)


class PayloadError(ParzenError):
    """The pickled objective payload cannot be built, verified or loaded."""


class PayloadSignatureError(PayloadError):
    """A payload's HMAC signature does not match: it was not written by a key holder."""


class PayloadTooLarge(PayloadError, ValueError):
    """The pickled objective is larger than the configured limit."""


class ObjectiveNotPicklable(PayloadError, TypeError):
    """cloudpickle could not serialise the objective or the space."""


class ObjectiveUnloadable(PayloadError):
    """A worker cannot load the objective: a missing module, version skew, or a payload its
    signing key does not verify (another key, or tampering)."""


class ConfigError(ParzenError, ValueError):
    """An argument to fmin, a trials object or a worker is of the wrong type or range."""


class AllTrialsFailed(ParzenError):
    """No trial finished with status ok, so there is no best trial to report."""


class NoTrialFinished(AllTrialsFailed):
    """The run was stopped (its ``timeout``) before any trial finished, so there is no best
    trial, though none failed either. The message says what became of the trials: never
    picked up (no worker on the queue, and the command that starts one), given back by
    workers that could not run them, or still running.

    A subclass of ``AllTrialsFailed``, which hyperopt raises when no trial succeeded, so code
    written against hyperopt keeps catching it.
    """
