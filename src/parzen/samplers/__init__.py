"""Samplers: pure functions from (space, history, rng) to new points.

``rand``, ``grid``, ``anneal`` and ``tpe`` each expose hyperopt's ``suggest`` and a sampler
class; ``Sampler`` is the protocol they share (``_base.py``).
"""

from __future__ import annotations

from parzen.samplers._base import Point, Sampler, origin_of, sampler_for
from parzen.samplers._history import History, HistoryBuilder
from parzen.samplers._prior import sample_prior, to_points

__all__ = ["History", "HistoryBuilder", "Point", "Sampler", "origin_of", "sample_prior",
           "sampler_for", "to_points"]
