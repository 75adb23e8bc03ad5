"""hyperopt 0.3.0's own public-API tests, and its documentation pages, run on parzen.

The tests are hyperopt's: ``hyperopt/tests/test_base.py`` and
``hyperopt/tests/unit/test_{anneal,domains,fmin,pchoice,plotting,progress,rand,randint,tpe,
webpage}.py`` from its sdist, fetched at run time with
``pip download hyperopt==0.3.0 --no-deps --no-binary :all:`` into a cache directory (never
committed). Every test runs except those of hyperopt's internals (``EXCLUDED``), which leaves
84. The files are rewritten mechanically:

- the suite's own modules (``hyperopt.tests[.unit].X``) become one package, ``hsuite.X``;
- names that only the excluded tests use are dropped from the import lines (``SONify``,
  ``bson``, ``hyperopt.atpe``, the mixture maths of ``hyperopt.tpe``); the same two steps
  are applied for hyperopt's own run, its baseline;
- for parzen only: ``from hyperopt.X import n`` -> ``from parzen.X import n``,
  ``import hyperopt.X as m`` -> ``import parzen.X as m``, ``import hyperopt[.X]`` ->
  ``import parzen[.X], parzen as hyperopt``.

hyperopt 0.3.0 runs in the anchor venv (``_anchors.py``), with pytest and matplotlib added.

The documentation pages (``docs/templates/getting-started/search_spaces.md``,
``minimizing_functions.md`` and ``docs/templates/tutorials/*.md``) run page by page, each in
one namespace, block after block, with the same import rewrite; a block that raises is
reported and the page goes on with the next block.

    .venv/bin/python bench/hyperopt_suite.py                 # parzen and hyperopt, tests + docs
    .venv/bin/python bench/hyperopt_suite.py --only parzen --no-docs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VERSION = "0.3.0"
SDIST = f"hyperopt-{VERSION}"
CACHE = Path(os.environ.get("PARZEN_HYPEROPT_SDIST_CACHE",
                            Path(tempfile.gettempdir()) / "parzen-hyperopt-sdist"))

FILES = ["tests/test_base.py"] + [f"tests/unit/test_{n}.py" for n in (
    "anneal", "domains", "fmin", "pchoice", "plotting", "progress", "rand", "randint", "tpe",
    "webpage")]
# hyperopt's internals: its BSON helper, its mixture maths, ATPE, and a test that drives
# pyll's evaluator by hand. (module, class or function name)
EXCLUDED = {
    ("test_base", "TestSONify"),
    ("test_tpe", "test_adaptive_parzen_normal_orig"),
    ("test_tpe", "TestGMM1"), ("test_tpe", "TestGMM1Math"), ("test_tpe", "TestQGMM1Math"),
    ("test_tpe", "TestLGMM1Math"), ("test_tpe", "TestQLGMM1Math"),
    ("test_tpe", "TestSuggestAtpe"), ("test_tpe", "TestOptQUniform"),
}
EXPECTED = 84
# Import lines that only the excluded tests need, dropped for both runs.
DROPPED_LINES = {
    "import bson",
    "import hyperopt.atpe as atpe",
    "from hyperopt.tpe import GMM1, LGMM1, GMM1_lpdf, LGMM1_lpdf, adaptive_parzen_normal_orig",
}
DROPPED_NAMES = {"SONify"}
DOC_PAGES = ["docs/templates/getting-started/search_spaces.md",
             "docs/templates/getting-started/minimizing_functions.md",
             "docs/templates/tutorials/01.BasicTutorial.md",
             "docs/templates/tutorials/02.MultipleParameterTutorial.md"]

CONFTEST = f"""
import pytest

EXCLUDED = {sorted(EXCLUDED)!r}


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        module = item.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        names = item.nodeid.split("::")[1:]
        (drop if any((module, n) in EXCLUDED for n in names) else keep).append(item)
    items[:] = keep
    config.hook.pytest_deselected(items=drop)
"""


# ---- fetching ----------------------------------------------------------------------------

def fetch_sdist(python: str = sys.executable) -> Path:
    """The unpacked sdist, downloaded from PyPI into ``CACHE`` on first use."""
    root = CACHE / SDIST
    if (root / "hyperopt" / "tests" / "unit" / "test_fmin.py").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"{SDIST}.tar.gz"
    if not archive.exists():
        subprocess.run([python, "-m", "pip", "download", f"hyperopt=={VERSION}", "--no-deps",
                        "--no-binary", ":all:", "--disable-pip-version-check", "-q",
                        "-d", str(CACHE)], check=True, timeout=600)
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return root


# ---- the rewrite -------------------------------------------------------------------------

_IMPORT = re.compile(
    r"^(?P<indent>\s*)import (?P<mod>hyperopt(?:\.[\w.]+)?)(?: as (?P<alias>\w+))?\s*$")
_FROM = re.compile(r"^(?P<indent>\s*)from (?P<mod>hyperopt(?:\.[\w.]+)?) import (?P<rest>.*)$")


def rewrite(source: str, to_parzen: bool) -> str:
    """hyperopt's test module made to import the suite as ``hsuite`` and, with
    ``to_parzen``, parzen in place of hyperopt (see the module's docstring)."""
    source = re.sub(r"\bhyperopt\.tests\.unit\.", "hsuite.", source)
    source = re.sub(r"\bhyperopt\.tests\.", "hsuite.", source)
    out = []
    for line in source.splitlines():
        if line.strip() in DROPPED_LINES:
            out.append(line[: len(line) - len(line.lstrip())] + "pass  # dropped: internals")
            continue
        if line.strip().rstrip(",") in DROPPED_NAMES:  # one name a line, in parentheses
            continue
        if to_parzen:
            line = _to_parzen(line)
        out.append(line)
    return "\n".join(out) + "\n"


def _to_parzen(line: str) -> str:
    m = _IMPORT.match(line)
    if m:
        mod = "parzen" + m["mod"][len("hyperopt"):]
        if m["alias"]:
            return f"{m['indent']}import {mod} as {m['alias']}"
        return f"{m['indent']}import {mod}, parzen as hyperopt" if mod != "parzen" else \
            f"{m['indent']}import parzen as hyperopt"
    m = _FROM.match(line)
    if m:
        return f"{m['indent']}from parzen{m['mod'][len('hyperopt'):]} import {m['rest']}"
    return line


def lay_out(sdist: Path, dest: Path, to_parzen: bool) -> Path:
    """The rewritten suite as the package ``dest/hsuite``, with its pytest set-up."""
    pkg = dest / "hsuite"
    if dest.exists():
        shutil.rmtree(dest)
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for rel in FILES:
        src = sdist / "hyperopt" / rel
        (pkg / src.name).write_text(rewrite(src.read_text(), to_parzen))
    (pkg / "conftest.py").write_text(CONFTEST)
    (dest / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    ignore\n")
    return dest


# ---- running -----------------------------------------------------------------------------

@dataclass
class SuiteResult:
    target: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    output: str = ""

    @property
    def total(self) -> int:
        return len(self.passed) + len(self.failed)


def run_suite(target: str, python: str, workdir: Path, sdist: Path,
              timeout_s: float = 900.0) -> SuiteResult:
    """Run the 84 tests on ``target`` ("parzen" or "hyperopt") with ``python``."""
    dest = lay_out(sdist, workdir / target, to_parzen=(target == "parzen"))
    env = {**os.environ, "MPLBACKEND": "Agg", "HYPEROPT_SHOW": "0",
           "PYTHONPATH": os.pathsep.join(
               [str(dest)] + ([str(REPO / "src")] if target == "parzen" else []))}
    env.pop("HYPEROPT_FMIN_SEED", None)
    xml = dest / "junit.xml"
    proc = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(dest / "pytest.ini"),
         "--rootdir", str(dest), f"--junitxml={xml}", "hsuite"],
        cwd=dest, env=env, capture_output=True, text=True, timeout=timeout_s)
    result = SuiteResult(target, output=proc.stdout[-20000:] + proc.stderr[-5000:])
    if not xml.exists():
        raise SystemExit(f"{target}: pytest wrote no report (exit {proc.returncode}):\n"
                         f"{result.output}")
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = f"{case.get('classname', '').removeprefix('hsuite.')}::{case.get('name')}"
        result.seconds += float(case.get("time") or 0.0)
        bad = any(child.tag in ("failure", "error", "skipped") for child in case)
        (result.failed if bad else result.passed).append(name)
    return result


def hyperopt_python() -> str:
    """The anchor venv's python, with pytest and matplotlib for the suite."""
    sys.path.insert(0, str(BENCH_DIR))
    from _anchors import ensure_anchor_venv

    py = str(ensure_anchor_venv(quiet=True))
    probe = subprocess.run([py, "-c", "import pytest, matplotlib"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "pytest", "matplotlib"], check=True, timeout=900)
    return py


# ---- documentation pages -----------------------------------------------------------------

DOC_RUNNER = textwrap.dedent('''
    import json, sys, traceback
    blocks = json.load(open(sys.argv[1]))
    ns = {"__name__": "__main__"}
    out = []
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"block{i + 1}", "exec"), ns)
            out.append(None)
        except BaseException as exc:
            out.append(f"{type(exc).__name__}: {exc}"[:300])
    print("@@RESULT@@" + json.dumps(out))
''')


def doc_blocks(page: Path, to_parzen: bool) -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    return [rewrite(b, to_parzen) for b in blocks]


def run_docs(target: str, python: str, workdir: Path, sdist: Path
             ) -> dict[str, list[str | None]]:
    """Each page's blocks in one namespace: None for a block that ran, else its error."""
    out: dict[str, list[str | None]] = {}
    here = workdir / f"docs-{target}"
    here.mkdir(parents=True, exist_ok=True)
    (here / "runner.py").write_text(DOC_RUNNER)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    if target == "parzen":
        env["PYTHONPATH"] = str(REPO / "src")
    for rel in DOC_PAGES:
        page = sdist / rel
        blocks_file = here / (page.stem + ".json")
        blocks_file.write_text(json.dumps(doc_blocks(page, target == "parzen")))
        proc = subprocess.run([python, str(here / "runner.py"), str(blocks_file)], cwd=here,
                              env=env, capture_output=True, text=True, timeout=900)
        marker = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")]
        out[rel] = json.loads(marker[-1][len("@@RESULT@@"):]) if marker else \
            [f"the page crashed: {proc.stderr[-300:]}"]
    return out


def doc_summary(results: dict[str, list[str | None]]) -> list[str]:
    lines = []
    for page, blocks in results.items():
        bad = [(i + 1, e) for i, e in enumerate(blocks) if e is not None]
        lines.append(f"  {page}: {len(blocks) - len(bad)} of {len(blocks)} blocks ran"
                     + ("" if not bad else "; " + "; ".join(f"block {i}: {e}" for i, e in bad)))
    return lines


# ---- main --------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("parzen", "hyperopt"), default=None,
                    help="run one side only (default: both)")
    ap.add_argument("--no-docs", action="store_true", help="skip the documentation pages")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where the rewritten suite goes (default: a temporary directory)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)

    sdist = fetch_sdist()
    targets = [args.only] if args.only else ["parzen", "hyperopt"]
    pythons = {"parzen": sys.executable}
    if "hyperopt" in targets:
        pythons["hyperopt"] = hyperopt_python()
    with tempfile.TemporaryDirectory(prefix="parzen-hsuite-") as tmp:
        workdir = args.workdir or Path(tmp)
        suites = {t: run_suite(t, pythons[t], workdir, sdist) for t in targets}
        docs = {} if args.no_docs else {t: run_docs(t, pythons[t], workdir, sdist)
                                        for t in targets}
    label = {"parzen": "parzen", "hyperopt": f"hyperopt {VERSION}"}
    print("; ".join(f"{label[t]}: {len(r.passed)} of {EXPECTED} passed"
                    for t, r in suites.items()))
    for t, r in suites.items():
        if r.total != EXPECTED:
            print(f"  {label[t]}: {r.total} tests ran, expected {EXPECTED}")
        for name in r.failed:
            print(f"  {label[t]} failed: {name}")
    for t, d in docs.items():
        print(f"documentation pages on {label[t]}:")
        print("\n".join(doc_summary(d)))
    if args.json:
        args.json.write_text(json.dumps(
            {t: {"passed": r.passed, "failed": r.failed} for t, r in suites.items()}
            | {"docs": docs}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
