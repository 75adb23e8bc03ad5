"""``hyperopt.tpe`` as user code imports it: ``suggest`` and the defaults of its settings.

parzen's TPE lives in ``parzen.samplers.tpe``; this module is the same ``suggest`` under
hyperopt's module path (``import hyperopt.tpe as tpe`` becomes ``import parzen.tpe as tpe``).
The ``_default_*`` names are the defaults of parzen's TPE, which are not hyperopt's in every
case (``gamma`` is None: parzen's own split of good and bad trials, see the README).
"""

from __future__ import annotations

import inspect
from typing import Any

from parzen.samplers.tpe import TPESampler, TPESettings, suggest

_DEFAULTS: dict[str, Any] = {
    name: p.default for name, p in inspect.signature(TPESampler.__init__).parameters.items()
    if p.default is not inspect.Parameter.empty
}

_default_gamma: float | None = _DEFAULTS["gamma"]
_default_prior_weight: float = _DEFAULTS["prior_weight"]
_default_n_EI_candidates: int = _DEFAULTS["n_EI_candidates"]  # noqa: N816 (hyperopt's name)
_default_n_startup_jobs: int = _DEFAULTS["n_startup_jobs"]

__all__ = ["TPESampler", "TPESettings", "suggest"]
