"""Trial stores: the contract (``TrialStore``) and its implementations."""

from __future__ import annotations

from parzen.store._base import Experiment, TrialStore
from parzen.store._memory import InMemoryTrialStore
from parzen.store._mongo import MongoTrialStore

__all__ = ["Experiment", "InMemoryTrialStore", "MongoTrialStore", "TrialStore"]
