"""One name per trial state (issue 18 item 7): the word stored in documents is the name the
CLI shows and takes; the other common words are accepted where a person types a state."""

from __future__ import annotations

import pytest

from parzen.cli._main import main
from parzen.exceptions import ConfigError
from parzen.store._documents import state_word
from parzen.trial import STATE_ALIASES, TrialState


@pytest.mark.parametrize("state", list(TrialState))
def test_the_name_is_the_stored_word(state: TrialState) -> None:
    assert state.word == state_word(state)
    assert TrialState.parse(state.word) is state
    assert TrialState.parse(f" {state.word.upper()} ") is state


@pytest.mark.parametrize(("alias", "state"), [
    ("queued", TrialState.NEW), ("failed", TrialState.ERROR),
    ("cancelled", TrialState.CANCEL), ("canceled", TrialState.CANCEL),
    ("Failed", TrialState.ERROR), ("ok", TrialState.DONE)])
def test_aliases_map_to_the_name(alias: str, state: TrialState) -> None:
    assert TrialState.parse(alias) is state


def test_an_aliases_target_is_a_state() -> None:
    assert {TrialState.parse(name) for name in STATE_ALIASES.values()} <= set(TrialState)


def test_an_unknown_word_lists_the_names_and_aliases() -> None:
    with pytest.raises(ConfigError) as err:
        TrialState.parse("finished")
    assert str(err.value) == (
        "'finished' is not a trial state: use one of new, running, done, error, cancel, pruned "
        "(also accepted: queued = new, failed = error, cancelled = cancel, canceled = cancel, "
        "ok = done)")


@pytest.mark.parametrize("command", ["trials", "requeue"])
def test_the_help_names_the_states_as_stored(command: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "error" in text and "failed = error" in text
    # Each state appears under its own name; "failed" only as the alias.
    assert text.count("failed") == text.count("failed = error")
