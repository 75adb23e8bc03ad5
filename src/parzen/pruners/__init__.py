"""Pruners: stop trials whose reported losses (``parzen.report``) say they are hopeless.

Pass one to ``fmin(..., pruner=...)``:

- ``MedianPruner``: the median stopping rule (Golovin et al. 2017).
- ``AshaPruner``: asynchronous successive halving (Li et al. 2020).
- ``HyperbandPruner``: Hyperband's brackets of successive halving (Li et al. 2018).

``None`` (the default) stops nothing; reported values are still recorded.
"""

from parzen.pruners._base import Curve, Pruner, check_pruner, pruner_from_dict, register
from parzen.pruners.halving import AshaPruner, HyperbandPruner
from parzen.pruners.median import MedianPruner

SuccessiveHalvingPruner = AshaPruner

__all__ = ["AshaPruner", "Curve", "HyperbandPruner", "MedianPruner", "Pruner",
           "SuccessiveHalvingPruner", "check_pruner", "pruner_from_dict", "register"]
