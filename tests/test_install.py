"""How users install parzen (README, "Use it in your project"): the commands the README gives
name extras that exist, ``make example`` installs what the README's next steps use, and
``make dist`` builds a wheel with every module and data file of the package."""

from __future__ import annotations

import re
import shlex
import subprocess
import zipfile
from pathlib import Path

import pytest

from parzen.version import __version__

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
MAKEFILE = (REPO / "Makefile").read_text()
EXTRAS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
             ["optional-dependencies"])


def _extras_used(text: str) -> set[str]:
    """The extras of every ``parzen[...]`` / ``.../parzen[...]`` / ``....whl[...]`` and
    ``.[...]`` requirement in ``text``."""
    found = set()
    for m in re.finditer(r"(?:parzen|\.whl|\.)\[([a-z0-9_,-]+)\]", text):
        found |= set(m.group(1).split(","))
    return found


def test_the_extras_the_readme_and_makefile_use_exist() -> None:
    used = _extras_used(README) | _extras_used(MAKEFILE)
    assert {"plots", "examples", "dev"} <= used  # the extractor finds them
    assert used <= EXTRAS, f"extras used but not in pyproject.toml: {sorted(used - EXTRAS)}"


def _pypi_installs(text: str) -> list[str]:
    """``pip install`` commands in ``text`` that fetch parzen by name from PyPI, where it is
    not (``pip install parzen``, ``pip install 'parzen[plots]'``); a line that says so is
    fine."""
    bad = []
    for line in text.splitlines():
        if "not on PyPI" in line:
            continue
        for m in re.finditer(r"pip install ([^`\n]*)", line):
            try:
                tokens = shlex.split(m.group(1), comments=True)
            except ValueError:
                tokens = m.group(1).split()
            if any(re.fullmatch(r"parzen(\[[\w,]+\])?", t) for t in tokens):
                bad.append(m.group(0))
    return bad


def test_no_claim_that_parzen_is_on_pypi() -> None:
    assert _pypi_installs("pip install 'parzen[plots]'\n`pip install parzen` here") == [
        "pip install 'parzen[plots]'", "pip install parzen"]
    assert _pypi_installs("pip install 'parzen[plots] @ git+file:///src/parzen'") == []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
                 *sorted((REPO / "deploy").rglob("*.md")), REPO / "workers" / "README.md",
                 REPO / "SECURITY.md"]:
        assert not _pypi_installs(path.read_text()), path.relative_to(REPO)


def test_make_example_installs_what_the_next_steps_use() -> None:
    recipe = re.search(r"^\$\(VENV\)/\.examples:.*\n((?:\t.*\n)+)", MAKEFILE, re.M)
    assert recipe is not None
    extras = _extras_used(recipe.group(1))
    assert "examples" in extras  # make example runs examples/random_forest.py
    if "parzen plot" in README:
        assert "plots" in extras, "the README shows parzen plot: make example needs plots"


def test_quick_start_is_two_set_up_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make example", "make test"]


def test_the_readme_names_the_wheel_make_dist_builds() -> None:
    assert "make dist" in README and re.search(r"^dist:", MAKEFILE, re.M)
    names = set(re.findall(r"parzen-[\w.]+?-py3-none-any\.whl", README))
    assert names == {f"parzen-{__version__}-py3-none-any.whl"}


@pytest.mark.slow
def test_make_dist_builds_a_wheel_with_the_package_data(tmp_path: Path) -> None:
    done = subprocess.run(["make", "dist", f"DIST={tmp_path}"], cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    wheels = list(tmp_path.glob("parzen-*.whl"))
    assert [w.name for w in wheels] == [f"parzen-{__version__}-py3-none-any.whl"]
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    tracked = subprocess.run(["git", "ls-files", "src/parzen"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
    assert tracked
    package_files = {p.removeprefix("src/") for p in tracked}
    # every module, and every file that is not Python (py.typed; any static files to come)
    assert "parzen/py.typed" in package_files
    assert package_files - names == set(), "files of src/parzen missing from the wheel"
    metadata = zipfile.ZipFile(wheels[0]).read(
        f"parzen-{__version__}.dist-info/METADATA").decode()
    for extra in EXTRAS:
        assert f"Provides-Extra: {extra}" in metadata
    entry_points = zipfile.ZipFile(wheels[0]).read(
        f"parzen-{__version__}.dist-info/entry_points.txt").decode()
    assert "parzen = parzen.cli:main" in entry_points
