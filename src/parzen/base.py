"""``hyperopt.base`` as user code imports it: ``Trials``, ``Domain``, the status and job-state
constants, and the helpers over trial documents.

``from hyperopt.base import Trials, STATUS_OK`` becomes ``from parzen.base import ...``; the
names are parzen's own (``parzen.trials``, ``parzen.domain``, ``parzen.trial``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from parzen.domain import Domain
from parzen.exceptions import (
    AllTrialsFailed,
    DuplicateLabel,
    InvalidLoss,
    InvalidResultStatus,
    InvalidTrial,
)
from parzen.trial import STATUS_FAIL, STATUS_NEW, STATUS_OK, STATUS_RUNNING, STATUS_STRINGS
from parzen.trials import (
    JOB_STATE_CANCEL,
    JOB_STATE_DONE,
    JOB_STATE_ERROR,
    JOB_STATE_NEW,
    JOB_STATE_RUNNING,
    JOB_STATES,
    JOB_VALID_STATES,
    TRIAL_KEYS,
    TRIAL_MISC_KEYS,
    Trials,
    miscs_to_idxs_vals,
    miscs_update_idxs_vals,
    spec_from_misc,
    trials_from_docs,
)

STATUS_SUSPENDED = "suspended"


def SONify(arg: Any) -> Any:  # noqa: N802 (hyperopt's name)
    """``arg`` with numpy values made plain Python (lists, ints, floats, strs, bools), as a
    BSON document needs them; dicts, lists and tuples are converted throughout."""
    if isinstance(arg, np.ndarray):
        return [SONify(v) for v in arg.tolist()] if arg.ndim else SONify(arg.item())
    if isinstance(arg, np.generic):
        return arg.item()
    if isinstance(arg, Mapping):
        return {SONify(k): SONify(v) for k, v in arg.items()}
    if isinstance(arg, (list, tuple)):
        return type(arg)(SONify(v) for v in arg)
    return arg


__all__ = [
    "JOB_STATES",
    "JOB_STATE_CANCEL",
    "JOB_STATE_DONE",
    "JOB_STATE_ERROR",
    "JOB_STATE_NEW",
    "JOB_STATE_RUNNING",
    "JOB_VALID_STATES",
    "STATUS_FAIL",
    "STATUS_NEW",
    "STATUS_OK",
    "STATUS_RUNNING",
    "STATUS_STRINGS",
    "STATUS_SUSPENDED",
    "TRIAL_KEYS",
    "TRIAL_MISC_KEYS",
    "AllTrialsFailed",
    "Domain",
    "DuplicateLabel",
    "InvalidLoss",
    "InvalidResultStatus",
    "InvalidTrial",
    "SONify",
    "Trials",
    "miscs_to_idxs_vals",
    "miscs_update_idxs_vals",
    "spec_from_misc",
    "trials_from_docs",
]
