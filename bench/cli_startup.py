"""How long the ``parzen`` command takes to start and answer, per command.

Each command runs ``--runs`` times as a fresh ``python -m parzen ...`` subprocess (what a
user's shell does), and the wall time of each run is measured from the outside; the table
gives the median and the fastest run, and the median CPU time (user + system) of the
command's processes, next to ``python -c pass`` (the interpreter alone). On a busy machine
the CPU time is the steadier figure: the wall time then includes waiting for a core.
The read commands run against a local run's file (``--file``, written by ``fmin(...,
trials_save_file=...)``) and against the wire-protocol Mongo test server
(``tests/support/wire_server.py``, a test double in a child process: its answers cost a few
milliseconds per query, which a real MongoDB would not).

    .venv/bin/python bench/cli_startup.py                  # this checkout, 11 runs each
    .venv/bin/python bench/cli_startup.py --src /tmp/old/src --runs 21
                                                           # another checkout's parzen

Targets (issue 18): ``parzen --help`` under 0.3 s, ``parzen trials`` under 0.6 s. Run it on
a quiet machine (``nice`` does not help a benchmark that others slow down); the machine's
load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support: the run the CLI tests use

from parzen.store._mongo import MongoTrialStore  # noqa: E402
from parzen.trials import Trials  # noqa: E402
from tests.support.cli import run_fmin  # noqa: E402

EXP = "cli-bench"


def _saved_run(path: Path) -> None:
    """A finished local run (the CLI tests' run: TPE, some trials failed), saved as fmin
    saves it."""
    run_fmin(save_file=str(path))


def _mongo_run(url: str) -> None:
    """The same run, stored on the wire server under ``EXP``."""
    store = MongoTrialStore.from_url(url)
    run_fmin(Trials(exp_key=EXP, store=store))
    store.close()


class _WireServer:
    """``python tests/support/wire_server.py --port 0`` as a child process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "support" / "wire_server.py"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=str(REPO))
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("mongodb://"):
            self.stop()
            raise RuntimeError(f"the wire server did not start: {line!r}")
        base, _, query = line.partition("/?")
        self.url = f"{base}/cli_bench?{query}" if query else f"{base.rstrip('/')}/cli_bench"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(argv: Sequence[str], env: dict[str, str], runs: int) -> tuple[list[float],
                                                                          list[float]]:
    """Wall and CPU seconds of each run; raises if the command fails."""
    walls, cpus = [], []
    for _ in range(runs):
        cpu, start = _children_cpu(), time.perf_counter()
        done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=False)
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu)
        if done.returncode != 0:
            raise RuntimeError(f"failed ({done.returncode}): "
                               f"{done.stderr.strip().splitlines()[-1]}")
    return walls, cpus


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=11, help="runs per command (default 11)")
    parser.add_argument("--src", type=Path, default=REPO / "src",
                        help="the src/ directory whose parzen to run (default: this checkout)")
    args = parser.parse_args(argv)

    env = {**os.environ, "PYTHONPATH": str(args.src.resolve()), "COLUMNS": "120"}
    env.pop("PARZEN_MONGO_URL", None)
    python = [sys.executable]
    parzen = [sys.executable, "-m", "parzen"]
    server = _WireServer()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            saved = Path(tmp) / "run.pkl"
            _saved_run(saved)
            _mongo_run(server.url)
            commands = {
                "python -c pass": [*python, "-c", "pass"],
                "parzen --help": [*parzen, "--help"],
                "parzen trials --help": [*parzen, "trials", "--help"],
                "parzen worker --help": [*parzen, "worker", "--help"],
                "parzen trials --file F": [*parzen, "trials", "--file", str(saved)],
                "parzen trials EXP --mongo URL": [*parzen, "trials", EXP, "--mongo", server.url],
                "parzen best EXP --mongo URL": [*parzen, "best", EXP, "--mongo", server.url],
                "parzen status EXP --mongo URL": [*parzen, "status", EXP, "--mongo",
                                                  server.url],
            }
            print(f"parzen from {args.src}; {args.runs} runs each; python "
                  f"{sys.version.split()[0]}; load average {os.getloadavg()[0]:.2f}")
            print(f"{'command':<32} {'median s':>9} {'fastest s':>10} {'median CPU s':>13}")
            for name, cmd in commands.items():
                try:
                    walls, cpus = _time(cmd, env, args.runs)
                except RuntimeError as exc:
                    print(f"{name:<32} {exc}")
                    continue
                print(f"{name:<32} {statistics.median(walls):>9.3f} {min(walls):>10.3f} "
                      f"{statistics.median(cpus):>13.3f}", flush=True)
            print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
