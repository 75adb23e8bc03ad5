"""Trial stores: the contract (``TrialStore``) and its implementations."""

from __future__ import annotations

from parzen.store._base import (
    LEASE_EXPIRED,
    MAX_REFUSALS,
    DriverLease,
    Experiment,
    ObjectiveKind,
    ObjectiveSpec,
    Refusal,
    StopRequest,
    TrialStore,
    back_to_new,
    lease_ended,
    lease_seconds,
)
from parzen.store._memory import InMemoryTrialStore
from parzen.store._mongo import MongoTrialStore

__all__ = ["LEASE_EXPIRED", "DriverLease", "Experiment", "InMemoryTrialStore", "MongoTrialStore",
           "ObjectiveKind", "ObjectiveSpec", "TrialStore", "back_to_new", "lease_ended",
           "lease_seconds"]
__all__ += ["MAX_REFUSALS", "Refusal", "StopRequest"]
