"""Run settings shared by the coordinator and the workers, with their validation.

Workers read the per-experiment settings (lease, heartbeat, trial timeout, attempts) from the
experiment document, so one coordinator decides them for the whole cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from parzen import validation
from parzen.exceptions import ConfigError

# The largest pickled objective (with its space) a run accepts; a setting of every trials
# class, so it lives here rather than with the payload code.
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class TrialSettings:
    """How workers run each trial of an experiment.

    Attributes:
        lease_s: a RUNNING trial whose worker has not heartbeaten for this long is presumed
            dead and requeued.
        heartbeat_s: how often a worker extends its lease; at most a third of ``lease_s`` so
            that two missed heartbeats do not lose the lease.
        trial_timeout_s: hard time limit of one evaluation (None: no limit).
        max_attempts: claims allowed per trial before a crashing trial is failed for good.
    """

    lease_s: float = 60.0
    heartbeat_s: float = 10.0
    trial_timeout_s: float | None = None
    max_attempts: int = 3

    def __post_init__(self) -> None:
        lease = validation.seconds("lease", self.lease_s)
        hb = validation.seconds("heartbeat", self.heartbeat_s)
        validation.seconds("trial_timeout", self.trial_timeout_s, allow_none=True)
        assert lease is not None and hb is not None
        if lease < 3 * hb:
            raise ConfigError(
                f"lease={lease:g}s is shorter than three heartbeats (heartbeat={hb:g}s); a "
                f"single slow heartbeat would lose the lease. Use lease >= {3 * hb:g} or a "
                "shorter heartbeat"
            )
        validation.integer("max_attempts", self.max_attempts, 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrialSettings:
        known = {k: d[k] for k in ("lease_s", "heartbeat_s", "trial_timeout_s", "max_attempts")
                 if k in d}
        return cls(**known)
