"""The loss a sampler learns from a pruned trial.

A trial stopped at a rung has no final loss, but its last reported loss is a measured one,
at a smaller budget. On a falling learning curve it is an upper bound of the loss the trial
would have reached, so it ranks the trial pessimistically: pruners keep the better trials of
each rung, so a pruned trial's value is worse than that of the trials that went on from
its rung, and those go on to lower losses still. The sampler thus places pruned trials in the
poor group in nearly every case, ordered among themselves by how far they got and how well
they did, without a made-up number that would bend the surrogate's fit. Leaving them out
instead would waste what they say about their region: with an aggressive pruner most trials
are pruned. ``bench/pruning.py --impute none`` measures that alternative.
"""

from __future__ import annotations

import math

from parzen.trial import Trial, TrialState


def pruned_loss(trial: Trial) -> float | None:
    """The loss a sampler should see for ``trial`` if it was pruned (its last reported
    loss, when finite), else None."""
    if trial.state is not TrialState.PRUNED:
        return None
    curve = trial.curve()
    if not curve or not math.isfinite(curve[-1].loss):
        return None
    return curve[-1].loss
