"""``bench/quality.py --batch K``: the batching check fails loudly, the near-duplicate metric
counts what the issue defines, and a real parzen batch run passes the check."""

from __future__ import annotations

import math

import pytest

from tests.support.bench import bench_module

_runners, problems = bench_module("_runners"), bench_module("problems")
NotBatchedError, _verify_batching, run_hp_quality = (
    _runners.NotBatchedError, _runners._verify_batching, _runners.run_hp_quality)
Param, near_duplicate_fraction = problems.Param, problems.near_duplicate_fraction


def test_a_true_batch_passes_and_a_sequential_run_fails_loudly() -> None:
    # 8 evaluations in batches of 4: points 0-3 suggested with 0 results, 4-7 with 4.
    ok = _verify_batching([0] * 4 + [4] * 4, [4] * 4 + [8] * 4, 8, 4, "ok")
    assert ok == {"suggest_count_check": "ok", "doc_count_check": "ok"}
    with pytest.raises(NotBatchedError, match="trial 1 suggested with 1 completed"):
        _verify_batching(list(range(8)), [], 8, 4, "sequential")
    # Suggested in time, but the Trials held more documents than the batch when an
    # evaluation started (the next batch queued early).
    with pytest.raises(NotBatchedError, match="evaluation 2 started with 8 trial documents"):
        _verify_batching([0] * 4 + [4] * 4, [4, 4, 8, 8, 8, 8, 8, 8], 8, 4, "early")


def test_near_duplicates_use_unit_scaling_log_scale_and_categorical_mismatch() -> None:
    params = (Param("x", "uniform", 0.0, 100.0), Param("lr", "loguniform", 1e-4, 1.0),
              Param("c", "choice", options=("a", "b")))
    base = {"x": 50.0, "lr": 1e-2, "c": "a"}
    close = {"x": 50.5, "lr": 1e-2 * 10 ** (4 * 0.005), "c": "a"}  # 0.005 per numeric dim
    far_cat = {**base, "c": "b"}  # a mismatch counts 1: distance sqrt(1 / 3)
    assert near_duplicate_fraction(params, [base, close], 2) == 1.0
    assert near_duplicate_fraction(params, [base, far_cat], 2) == 0.0
    # Two batches of two: one with a near pair, one without.
    assert math.isclose(near_duplicate_fraction(params, [base, close, base, far_cat], 2), 0.5)


@pytest.mark.timeout(120)
def test_a_parzen_batch_run_is_truly_batched_and_holds_no_near_duplicates() -> None:
    out = run_hp_quality("parzen", "branin", seed=0, evals=40, batch=8)
    assert out["batch_check"] == {"suggest_count_check": "ok", "doc_count_check": "ok"}
    assert out["near_dup"] == 0.0
    assert len(out["losses"]) == 40
