"""``bench/quality.py --noise``: every algorithm sees the same noise for a seed, a run is
scored by the true loss of the trial it would report, and a bad spec is refused by name."""

from __future__ import annotations

import pytest

from tests.support.bench import bench_module

_runners, quality = bench_module("_runners"), bench_module("quality")
_Measure, run_hp_quality = _runners._Measure, _runners.run_hp_quality
NOISE_SD, parse_args, regrets = quality.NOISE_SD, quality.parse_args, quality.regrets

POINT = {"x1": 3.0, "x2": 2.0}


def test_the_noise_depends_on_the_seed_and_evaluation_order_only() -> None:
    a, b, other = _Measure("branin", 5, 1.0), _Measure("branin", 5, 1.0), _Measure("branin", 6, 1.0)
    seen = [a(POINT) for _ in range(3)]
    assert seen == [b(POINT) for _ in range(3)]
    assert seen != [other(POINT) for _ in range(3)]
    assert len(set(seen)) == 3 and a.true_losses == [a.true_losses[0]] * 3
    quiet = _Measure("branin", 5, 0.0)
    assert quiet(POINT) == a.true_losses[0]
    assert "true_losses" not in quiet.record(0.0, {}, 1)
    assert a.record(0.0, {}, 1)["true_losses"] == a.true_losses


def test_the_regret_is_the_true_loss_of_the_lowest_noisy_loss() -> None:
    run = {"losses": [5.0, 1.0, 3.0, 0.5], "true_losses": [2.0, 4.0, 1.5, 3.0]}
    # After 3 evaluations the user would report the second trial (noisy 1.0): truly 4.0, not
    # the best true value seen (1.5).
    assert regrets(run, 1.0, [1, 3, 4]) == {"1": 1.0, "3": 3.0, "4": 2.0}
    assert regrets({"losses": [3.0, 2.0, 2.5]}, 1.0, [1, 3]) == {"1": 2.0, "3": 1.0}


@pytest.mark.timeout(60)
def test_a_noisy_parzen_run_reports_both_losses() -> None:
    out = run_hp_quality("parzen", "branin", seed=0, evals=20, batch=1, noise_sd=1.0)
    diffs = [s - t for s, t in zip(out["losses"], out["true_losses"], strict=True)]
    assert len(diffs) == 20 and all(d != 0.0 for d in diffs)
    assert 0.3 < (sum(d * d for d in diffs) / 20) ** 0.5 < 2.0


def test_the_noise_option_takes_defaults_overrides_and_refuses_bad_specs(
        capsys: pytest.CaptureFixture[str]) -> None:
    args = parse_args(["--noise", "--problems", "branin,rf_mixed"])
    assert args.noise_sd == {"branin": NOISE_SD["branin"], "rf_mixed": NOISE_SD["rf_mixed"]}
    assert args.out.name == "quality_noisy.json"
    args = parse_args(["--noise", "branin:2.5", "--problems", "branin", "--batch", "8"])
    assert args.noise_sd == {"branin": 2.5} and args.out.name == "quality_batch8_noisy.json"
    assert parse_args(["--problems", "branin"]).noise_sd == {}
    for bad, named in (("branin:x", "'branin:x' is not PROBLEM:SD"),
                       ("branin:0", "no positive sd for branin")):
        with pytest.raises(SystemExit):
            parse_args(["--noise", bad, "--problems", "branin"])
        assert named in capsys.readouterr().err
