"""Setting up an experiment for Celery workers: the signed objective, the refusal to resume
with another space or objective, and the experiment document.

Building the objective only reads and checks; ``write_experiment`` is the run's first write
and happens once the driver lease is held.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from parzen.backends import CeleryBackend
from parzen.domain import Domain
from parzen.exceptions import ConfigError, SpaceChanged
from parzen.execution import payload
from parzen.settings import TrialSettings
from parzen.space import describe
from parzen.space.described import params_of
from parzen.store import Experiment, ObjectiveKind, ObjectiveSpec, TrialStore

log = logging.getLogger("parzen.runners.celery")


def objective_fingerprint(fn: Any) -> str:
    """A hash of the objective's code, stable across runs of the same source."""
    code = getattr(fn, "__code__", None)
    if code is None and callable(fn):
        code = getattr(fn.__call__, "__code__", None)
    if code is None:
        return hashlib.sha256(repr(fn).encode()).hexdigest()[:16]
    h = hashlib.sha256()
    h.update(getattr(fn, "__qualname__", "").encode())
    h.update(code.co_code)
    h.update(repr(code.co_consts).encode())
    h.update(repr(code.co_names).encode())
    return h.hexdigest()[:16]


def build_objective(domain: Domain, backend: CeleryBackend, key: bytes,
                    exp_key: str) -> tuple[ObjectiveSpec, bytes | None]:
    """The objective as workers will load it, signed with ``key``.

    Returns:
        The spec for the experiment document, and the signed payload to store in GridFS
        when it is too large to sit in the document (else None).
    Raises:
        ConfigError: ``backend.objective`` does not import the function given to fmin.
        PayloadTooLarge, ObjectiveNotPicklable: the objective cannot be shipped.
    """
    if backend.objective is not None:
        fn = payload.import_objective(backend.objective)
        if fn is not domain.fn:
            raise ConfigError(
                f"objective={backend.objective!r} imports {fn!r}, but fmin was given "
                f"{domain.fn!r}; pass the imported function to fmin"
            )
        space = payload.build(domain.expr, key, max_bytes=backend.max_payload_bytes)
        return ObjectiveSpec(kind=ObjectiveKind.IMPORT, sha256=f"{space.sha256}:"
                             f"{backend.objective}", fingerprint=backend.objective,
                             path=backend.objective, space_inline=space.data), None
    built = payload.build((domain.fn, domain.expr), key, max_bytes=backend.max_payload_bytes)
    inline = built.size <= payload.INLINE_MAX_BYTES
    big = built.size > 1e6
    (log.warning if big else log.info)(
        "objective payload for %r: %.2f MB, stored %s%s; signed with the key of fingerprint "
        "%s", exp_key, built.size / 1e6,
        "inline" if inline else "GridFS",
        "; large payloads slow every worker's start, consider loading data inside the "
        "objective" if big else "", payload.key_fingerprint(key))
    spec = ObjectiveSpec(kind=ObjectiveKind.PICKLE, sha256=built.sha256,
                         fingerprint=objective_fingerprint(domain.fn), size=built.size,
                         versions=payload.stamp(), inline=built.data if inline else None)
    return spec, None if inline else built.data


def refuse_changes(store: TrialStore, old: Experiment | None, domain: Domain,
                   objective: ObjectiveSpec) -> None:
    """Refuse to resume an experiment whose trials came from another space or objective.

    Raises:
        SpaceChanged: the stored space or objective fingerprint differs, and the experiment
            has trials; the message names what changed.
    """
    if old is None or not old.space_fingerprint:
        return
    if sum(store.count_by_state(old.exp_key).values()) == 0:
        return
    space_fp = domain.space.fingerprint()
    problems = []
    if old.space_fingerprint != space_fp:
        problems.append(f"space fingerprint {old.space_fingerprint} -> {space_fp} "
                        f"({space_changes(old.space, describe(domain.expr))})")
    old_obj = old.objective.fingerprint if old.objective is not None else ""
    if old_obj and old_obj != objective.fingerprint:
        problems.append(f"objective fingerprint {old_obj} -> {objective.fingerprint}")
    if problems:
        raise SpaceChanged(
            f"experiment {old.exp_key!r} already has trials from a different setup: "
            + "; ".join(problems)
            + ". Use a new exp_key, or pass MongoTrials(..., allow_space_change=True) to "
            "resume anyway"
        )


def space_changes(old: Any, new: Any) -> str:
    """What differs between two space descriptions, label by label: ``'lr': loguniform(low=-9,
    high=-2) -> loguniform(low=-9, high=0); added ['momentum']``."""
    if not old:
        return "the stored experiment has no space description to compare with"
    before, after = params_of(old), params_of(new)
    diff = [f"{label!r}: {before[label].distribution_text()} -> "
            f"{after[label].distribution_text()}" for label in before
            if label in after
            and before[label].distribution_text() != after[label].distribution_text()]
    removed = [label for label in before if label not in after]
    added = [label for label in after if label not in before]
    if removed:
        diff.append(f"removed {removed}")
    if added:
        diff.append(f"added {added}")
    return "; ".join(diff) or ("the same labels and distributions; what is built from them "
                               "changed (an expression, a constant or a dict key)")


def write_experiment(store: TrialStore, exp_key: str, domain: Domain,
                     objective: ObjectiveSpec, gridfs_data: bytes | None,
                     settings: TrialSettings, max_evals: int | None,
                     old: Experiment | None,
                     pruner: Mapping[str, Any] | None = None) -> ObjectiveSpec:
    """Store the payload (GridFS when large) and the experiment document, then drop the
    previous run's GridFS payload if it was replaced.

    Returns:
        The objective spec as stored (with its GridFS id, if any).
    """
    if gridfs_data is not None:
        objective = dataclasses.replace(
            objective, payload_id=store.put_payload(exp_key, gridfs_data))
    store.put_experiment(Experiment(
        exp_key=exp_key, space_fingerprint=domain.space.fingerprint(),
        space=describe(domain.expr), objective=objective, algo={},
        settings={**settings.to_dict(), "pruner": dict(pruner) if pruner else None},
        max_evals=max_evals))
    old_id = old.objective.payload_id if old is not None and old.objective else None
    if old_id and old_id != objective.payload_id:
        store.delete_payload(old_id)
    return objective
