"""``hyperopt.rand`` as user code imports it: ``suggest``, random search (parzen's
``parzen.samplers.rand`` under hyperopt's module path)."""

from __future__ import annotations

from parzen.samplers.rand import RandomSampler, suggest

__all__ = ["RandomSampler", "suggest"]
