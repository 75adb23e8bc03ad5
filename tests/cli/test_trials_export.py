"""``Trials.export`` / ``Trials.to_dataframe``, and space_eval from a space's description."""

from __future__ import annotations

import csv
import json
import pickle
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from parzen import Trials
from parzen.exceptions import ConfigError, InvalidTrial
from parzen.space import describe, space_eval
from parzen.space.described import evaluate, params_of, short_text
from tests.support.cli import SPACE, Cli


def _load(path: str) -> Trials:
    with open(path, "rb") as f:
        trials = pickle.load(f)
    assert isinstance(trials, Trials)
    return trials


def test_export_csv_equals_the_cli_csv(cli: Cli, local_file: str, tmp_path: Path) -> None:
    trials = _load(local_file)
    out = tmp_path / "t.csv"
    assert trials.export(str(out)) == len(trials._dynamic_trials)
    assert out.read_text() == cli("trials", "--file", local_file, "--format", "csv")


def test_export_jsonl_has_the_cli_rows(cli: Cli, local_file: str, tmp_path: Path) -> None:
    trials = _load(local_file)
    out = tmp_path / "t.jsonl"
    trials.export(str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == json.loads(cli("trials", "--file", local_file, "--format", "json"))
    with open(out) as f:
        assert len(f.readlines()) == len(trials._dynamic_trials)


def test_export_of_a_mongo_experiment_uses_the_stored_space(mongo_url: str,
                                                            tmp_path: Path) -> None:
    from parzen.store._mongo import MongoTrialStore
    from tests.support.cli import MONGO_EXP

    store = MongoTrialStore.from_url(mongo_url)
    try:
        trials = Trials(exp_key=MONGO_EXP, store=store)
        out = tmp_path / "t.csv"
        trials.export(str(out), format="csv")
    finally:
        store.close()
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert "act_value" in rows[0]
    assert {r["act_value"] for r in rows if r["act"] == "1"} == {"tanh"}


def test_export_refuses_an_unknown_format(local_file: str, tmp_path: Path) -> None:
    trials = _load(local_file)
    with pytest.raises(ConfigError, match=r"\*\.csv or \*\.jsonl"):
        trials.export(str(tmp_path / "t.xlsx"))
    with pytest.raises(ConfigError, match="'csv' or 'jsonl'"):
        trials.export(str(tmp_path / "t.out"), format="parquet")


def test_to_dataframe_builds_the_export_columns(local_file: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # pandas is optional and not installed for the tests: a stand-in records the call.
    made: dict[str, Any] = {}

    class DataFrame:
        @staticmethod
        def from_records(records: list[dict[str, Any]], columns: list[str]) -> str:
            made.update(records=records, columns=columns)
            return "frame"

    monkeypatch.setitem(sys.modules, "pandas", types.SimpleNamespace(DataFrame=DataFrame))
    trials = _load(local_file)
    assert trials.to_dataframe() == "frame"
    assert made["columns"][:3] == ["tid", "state", "loss"]
    assert len(made["records"]) == len(trials._dynamic_trials)


def test_to_dataframe_without_pandas_says_what_to_install(local_file: str,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ConfigError, match="pip install pandas"):
        _load(local_file).to_dataframe()


@pytest.mark.parametrize("act", [0, 1, 2])
def test_evaluate_on_a_description_equals_space_eval(act: int) -> None:
    params = {"lr": 0.01, "layers": 3.0, "act": act, "slope": 0.2}
    if act != 2:
        del params["slope"]
    desc = json.loads(json.dumps(describe(SPACE)))  # as stored in MongoDB
    assert evaluate(desc, params) == space_eval(SPACE, params)


def test_description_helpers_read_kinds_casts_and_options() -> None:
    desc = describe({"a": [SPACE["act"], (1, None)], "b": SPACE["layers"]})
    infos = params_of(desc)
    assert list(infos) == ["act", "slope", "layers"]
    assert infos["act"].is_choice and infos["layers"].cast == "int"
    assert infos["layers"].is_quantized and not infos["slope"].is_log
    assert infos["act"].option_labels(40) == ["relu", "tanh", "{kind: leaky, slope: <slope>}"]
    assert short_text(describe((1, "x"))) == "(1, x)"
    assert evaluate(desc, {"act": 0, "layers": 2.0}) == {"a": ["relu", (1, None)], "b": 2}
    with pytest.raises(InvalidTrial, match="index 5 is out of range"):
        evaluate(desc, {"act": 5, "layers": 2.0})
    with pytest.raises(InvalidTrial, match="no value for active parameter 'layers'"):
        evaluate(desc, {"act": 0})
