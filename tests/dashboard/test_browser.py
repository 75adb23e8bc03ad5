"""The dashboard in a real browser: headless Chromium against a live server on the wire test
server's MongoDB. The pages must show the stored numbers, and a result stored after the page
loaded must appear without a reload, by the second poll (polls are a second apart).

``PARZEN_DASHBOARD_SCREENSHOTS=docs/img`` also saves the README's screenshots there.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parzen import processes
from parzen.cli._source import Source
from parzen.space import describe
from parzen.store import Experiment, InMemoryTrialStore, MongoTrialStore
from parzen.trial import Owner, Trial, TrialState
from parzen.trials import Trials
from tests.support import mongo as mf
from tests.support.browser import Browser, chromium_path
from tests.support.cli import (
    MONGO_EXP,
    SPACE,
    add_in_flight,
    database_url,
    finished_experiment,
    run_fmin,
)
from tests.support.dashboard import Running, SlowFirstRead, serving
from tests.support.services import require_service

pytestmark = [pytest.mark.browser, pytest.mark.integration]
SCREENSHOTS = os.environ.get("PARZEN_DASHBOARD_SCREENSHOTS")


def js_num(x: float) -> str:
    """The page's ``num(x)``: six significant digits, JavaScript's way of writing them."""
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    short = float(f"{x:.6g}")
    if 1e-4 <= abs(x) < 1e9:
        return repr(short)
    assert abs(x) < 1e-4, x  # (larger magnitudes are not used here)
    mantissa, exponent = repr(short).split("e")
    return f"{mantissa}e{int(exponent)}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_service(chromium_path() is not None, "chromium (apt-get install -y chromium)")
    with Browser(width=1280, height=860) as b:
        yield b


@pytest.fixture
def live_db(wire_server: Any, wire_client: Any) -> Iterator[tuple[str, MongoTrialStore]]:
    """``mnist-tpe``: a real TPE run plus what a live run has (a coordinator, three workers
    holding trials, one of them with an expired lease, a fourth whose process is gone, a
    queued trial); ``cifar-small``."""
    with mf.throwaway_database(wire_client) as db:
        url = database_url(wire_server.url, db.name)
        store = MongoTrialStore.from_url(url)
        run_fmin(Trials(exp_key=MONGO_EXP, store=store))
        # Heartbeats every minute: no worker of the test turns stale while it runs.
        store.put_experiment(Experiment(MONGO_EXP, space=describe(SPACE), max_evals=60,
                                        settings={"heartbeat_s": 60.0, "lease_s": 600.0}))
        add_in_flight(store, MONGO_EXP)
        last = store.find(MONGO_EXP, states=[TrialState.NEW])[-1]
        assert store.claim(MONGO_EXP, last.tid, _gone_owner("gpu-5"), lease_s=600)
        finished_experiment(store, "cifar-small", n=4)
        yield url, store
        store.close()


def _gone_owner(worker: str) -> Owner:
    """An owner on this machine whose process has exited: ``parzen status`` calls it DEAD."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    owner = Owner(worker, "node-5", child.pid, slot=1, pid_ns=processes.pid_namespace(),
                  pid_start=processes.start_ticks(child.pid))
    child.kill()
    child.wait()
    return owner


def _show(browser: Browser, d: Running, route: str, ready: str) -> None:
    browser.js(f"location.hash = {json.dumps(route)}")
    browser.wait_for(ready)


def _filter_state(browser: Browser, state: str) -> None:
    browser.js(f"(() => {{ const s = document.querySelector('#f-state'); s.value = '{state}'; "
               "s.dispatchEvent(new Event('change')); })()")


def _shot(browser: Browser, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        time.sleep(0.3)  # let uPlot settle its last frame
        browser.screenshot(str(Path(SCREENSHOTS) / name))


def test_pages_show_the_stored_numbers_and_a_new_result_by_the_second_poll(
        browser: Browser, live_db: tuple[str, MongoTrialStore]) -> None:
    url, store = live_db
    trials = store.find(MONGO_EXP)
    done = [t for t in trials if t.loss is not None]
    failed = [t for t in trials if t.state is TrialState.ERROR]
    best = min(done, key=lambda t: math.inf if t.loss is None else t.loss)
    assert best.loss is not None
    with serving(mongo_url=url) as d:
        # The experiment list.
        browser.open(d.url)
        row = 'document.querySelector(\'tr[data-exp="mnist-tpe"]\')'
        browser.wait_for(row)
        assert browser.text('tr[data-exp="mnist-tpe"] .c-done') == str(len(done))
        assert browser.text('tr[data-exp="mnist-tpe"] .c-error') == str(len(failed))
        assert browser.text('tr[data-exp="mnist-tpe"] .c-running') == "4"
        assert browser.text('tr[data-exp="mnist-tpe"] .best') == js_num(best.loss)
        assert browser.text('tr[data-exp="cifar-small"] .c-done') == "4"

        # History: one point per trial with a loss, and the best.
        _show(browser, d, "#/exp/mnist-tpe/history",
              f"document.querySelector('#history-plot canvas') && "
              f"document.querySelector('#history-plot').dataset.points === '{len(done)}'")
        caption = browser.text("#history-caption")
        assert f"{len(done)} trials with a loss; best {js_num(best.loss)} (trial {best.tid})" \
            == caption
        assert browser.text("#best-loss") == js_num(best.loss)
        assert "alive" in browser.text("#coordinator")
        _shot(browser, "dashboard-history.png")

        # Parameters: importance bars, one slice per parameter, parallel coordinates.
        _show(browser, d, "#/exp/mnist-tpe/params",
              "document.querySelectorAll('#importance tr[data-param]').length === 4 && "
              "document.querySelectorAll('[data-slice] canvas').length === 4")
        assert browser.js("document.querySelector('#parcoords').dataset.lines") == str(len(done))
        _shot(browser, "dashboard-parameters.png")

        # The trial table: every trial, sortable, filtered by state.
        _show(browser, d, "#/exp/mnist-tpe/trials",
              f"document.querySelector('#trial-count') && document.querySelector("
              f"'#trial-count').innerText === '{len(trials)} of {len(trials)} trials'")
        cells = browser.js(f"[...document.querySelectorAll('tr[data-tid=\"{best.tid}\"] td')]"
                           ".map(td => td.innerText)")
        assert cells[:3] == [str(best.tid), "done", js_num(best.loss)]
        _filter_state(browser, "error")
        assert browser.text("#trial-count") == f"{len(failed)} of {len(trials)} trials"
        browser.js("document.querySelector('th[data-col=\"loss\"]').click()")
        _filter_state(browser, "done")
        first = browser.js("document.querySelector('#trial-table tbody tr[data-tid]')"
                           ".dataset.tid")
        assert first == str(best.tid)  # sorted by loss, best first

        # Workers: slots busy, trials held, marked as parzen status marks them: the one whose
        # process is gone DEAD; the one whose lease ran out still beating (its heartbeat is
        # recent), its trial struck through as expired.
        _show(browser, d, "#/exp/mnist-tpe/workers",
              "document.querySelectorAll('#workers tbody tr').length === 5")
        for worker in ("gpu-1", "gpu-2", "gpu-3", "gpu-5"):
            assert browser.text(f'tr[data-worker="{worker}"] .busy') == "1"
        assert browser.text('tr[data-worker="inline"] .busy') == "0"  # fmin's own trials
        states = browser.js("Object.fromEntries([...document.querySelectorAll("
                            "'#workers tbody tr')].map(tr => [tr.dataset.worker, "
                            "tr.dataset.state]))")
        assert states == {"gpu-1": "beating", "gpu-2": "beating", "gpu-3": "beating",
                          "gpu-5": "dead", "inline": "idle"}
        assert browser.text('tr[data-worker="gpu-5"] .stale') == "DEAD"
        assert not browser.js("!!document.querySelector('tr[data-worker=\"gpu-1\"] .stale')")
        assert browser.js("!!document.querySelector('tr[data-worker=\"gpu-3\"] s')")

        # Live: a result stored now shows without a reload, by the second poll.
        _show(browser, d, "#/exp/mnist-tpe/history",
              "document.querySelector('#history-plot canvas')")
        queued = store.find(MONGO_EXP, states=[TrialState.NEW])[0]
        # Strictly below the best, so the page has something new to show (TPE can reach a
        # loss of exactly 0 here, and half of it is the same number).
        new_best = best.loss / 2 if best.loss > 0 else best.loss - 1.0
        polls = browser.js("window.parzenDash.polls")
        claimed = store.claim(MONGO_EXP, queued.tid, Owner("gpu-4", "node-4", 104), 60)
        assert claimed is not None and claimed.claim_token
        stored_at = time.monotonic()
        assert store.finish(MONGO_EXP, queued.tid, claimed.claim_token, TrialState.DONE,
                            {"status": "ok", "loss": new_best})
        browser.wait_for(f"document.querySelector('#best-loss').innerText === "
                         f"'{js_num(new_best)}'", timeout_s=10, every_s=0.02)
        seen_after = time.monotonic() - stored_at
        after = browser.js("window.parzenDash.polls")
        print(f"a stored result was on the page {seen_after:.2f} s later, "
              f"{after - polls} polls after")
        assert after - polls <= 2
        assert browser.js("document.querySelector('#history-plot').dataset.points") \
            == str(len(done) + 1)
        assert browser.js("performance.getEntriesByType('navigation').length") == 1


def test_a_token_protected_dashboard_refuses_the_page_without_its_token(
        browser: Browser, tmp_path: Path) -> None:
    path = str(tmp_path / "run.pkl")
    run_fmin(save_file=path)
    with serving(file=path, token="t0ken-xyz", loopback=False) as d:
        browser.open(d.url)
        browser.wait_for("document.body && document.body.innerText.includes('access token')")
        assert "t0ken-xyz" not in browser.js("document.body.innerText")
        browser.open(d.url + "?token=t0ken-xyz")
        browser.wait_for("document.querySelector('tr[data-exp=\"default\"]')")
        assert browser.js("location.search") == ""  # the token left the address bar
        # The page's own API calls carry the cookie: a poll works, a stranger's does not.
        assert d.get("/api/experiments")[0] == 401




def _store_result(store: InMemoryTrialStore, key: str, loss: float) -> int:
    tid = store.allocate_tids(key, 1)[0]
    store.insert_new([Trial(key, tid, TrialState.NEW, {"lr": 0.01, "layers": 2.0, "act": 0})])
    t = store.claim(key, tid, Owner("cpu-2", "node-9", 8), lease_s=60)
    assert t is not None and t.claim_token
    assert store.finish(key, tid, t.claim_token, TrialState.DONE, {"status": "ok", "loss": loss})
    return tid


def test_the_page_says_loading_while_the_server_reads_and_parameters_redraw_at_most_so_often(
        browser: Browser) -> None:
    store = SlowFirstRead()
    finished_experiment(store, "cifar", n=30)
    with serving(opened=Source(store=store, where="memory"), warm_up=True) as d:
        assert store.reading.wait(30)  # the warm-up, started with the server, is reading
        browser.open(d.url + "#/exp/cifar/params")
        browser.wait_for("document.querySelector('#loading') && document.querySelector("
                         "'#loading').innerText.includes(\"still reading the trials of 'cifar'\")")
        store.release.set()
        lines = "document.querySelector('#parcoords') && document.querySelector('#parcoords')" \
                ".dataset.lines"
        browser.wait_for(f"{lines} === '30' && "
                         "document.querySelectorAll('#importance tr[data-param]').length === 4")

        # Drawn a moment ago: a new result reaches the page, the plots wait for the interval.
        browser.js("window.parzenDash.paramsEveryMs = 3600 * 1000")
        draws = browser.js("window.parzenDash.paramsDraws")
        tid = _store_result(store, "cifar", 0.5)
        browser.wait_for(f"window.parzenDash.exp.trials.get({tid})?.state === 'done'")
        assert browser.js(lines) == "30"
        assert browser.js("window.parzenDash.paramsDraws") == draws
        # The interval over, the next change draws them, with every result.
        browser.js("window.parzenDash.paramsEveryMs = 0")
        _store_result(store, "cifar", 0.25)
        browser.wait_for(f"{lines} === '32'")


def test_losses_thirty_decades_apart_draw_on_a_log_axis(browser: Browser) -> None:
    # uPlot's own log axis never finished ranging losses down to 1e-31 (nor a minimum just
    # under a power of ten): the page froze. A TPE run can reach such a loss.
    store = InMemoryTrialStore()
    finished_experiment(store, "tiny", n=4)  # losses 1 to 0.25
    for loss in (1.97e-31, 0.99e-3):
        _store_result(store, "tiny", loss)
    with serving(opened=Source(store=store, where="memory")) as d:
        browser.open(d.url + "#/exp/tiny/history")
        browser.wait_for("document.querySelector('#history-plot canvas') && "
                         "document.querySelector('#history-plot').dataset.points === '6'")
        assert browser.js("document.querySelector('#logy').checked")
        assert browser.text("#best-loss") == js_num(1.97e-31)
        _show(browser, d, "#/exp/tiny/params",
              "document.querySelectorAll('[data-slice] canvas').length === 4")
