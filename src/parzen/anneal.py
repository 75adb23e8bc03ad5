"""``hyperopt.anneal`` as user code imports it: ``suggest``, annealing around the best trials
(parzen's ``parzen.samplers.anneal`` under hyperopt's module path)."""

from __future__ import annotations

from parzen.samplers.anneal import AnnealSampler, suggest

__all__ = ["AnnealSampler", "suggest"]
