"""The package's shape, checked from its source: no import cycles, imports point down the
layers of ``docs/architecture.md``, and no import hides inside a function except for an
optional dependency.

Two modules load parzen modules by name, on first use, so that the ``parzen`` command starts
without numpy, scipy, pymongo and Celery: the package root (``parzen/__init__.py``: the API
loads when a name of it is first read) and ``parzen.cli._main`` (a command's module loads
when the command runs). Each keeps the module names in a table; the checks below read every
string in those two files that names a parzen module as an import of that file, so a lazy
import obeys the layers like any other. No other module may load parzen modules by name
(``LAZY_LOADERS``); ``parzen.execution.payload`` loads the user's objective by its
``"module:function"`` path, which is not parzen's.

Run alone with ``python -m pytest tests/test_architecture.py -q``; it reads the files and
imports nothing of parzen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "parzen"
# Imported inside functions on purpose: extras a plain install does not bring.
OPTIONAL = ("pandas", "matplotlib", "pyspark")
# Modules that import parzen modules by name (importlib.import_module over a table of names),
# and why; the names in their tables count as their imports.
LAZY_LOADERS = {
    "parzen": "the API loads on first use, so `import parzen` (the CLI's) stays cheap",
    "parzen.cli._main": "a command's module loads when the command runs",
}
# Modules that call importlib.import_module on names that are not parzen's.
USER_CODE_LOADERS = {
    "parzen.execution.payload": "imports the user's objective by its 'module:function' path",
}

# Top to bottom; a module may import its own layer or any below. The first matching
# prefix decides a module's layer (longer prefixes are listed before shorter ones).
LAYERS: list[tuple[str, ...]] = [
    ("parzen", "parzen.__main__", "parzen.cli"),
    ("parzen.fmin", "parzen.plotting", "parzen.base"),
    ("parzen.runners.inline", "parzen.runners.local", "parzen.runners.celery",
     "parzen.runners.spark", "parzen.runners"),
    ("parzen.worker",),
    ("parzen.coordinator", "parzen.failure_watch"),
    ("parzen.runners.base",),
    ("parzen.execution",),
    ("parzen.mongoexp", "parzen.parallel", "parzen.spark"),
    ("parzen.trials",),
    ("parzen.export", "parzen.backends", "parzen.domain", "parzen.progress",
     "parzen.early_stop", "parzen.pyll.stochastic"),
    ("parzen.samplers", "parzen.tpe", "parzen.rand", "parzen.anneal", "parzen.pruners"),
    ("parzen.store",),
    ("parzen.space", "parzen.hp", "parzen.pyll"),
    ("parzen.trial", "parzen.settings", "parzen.validation", "parzen.exceptions", "parzen.health",
     "parzen.processes", "parzen.version", "parzen.reporting"),
]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules()


def _resolve(module: str, name: str) -> str:
    """``from module import name`` imports the submodule ``module.name`` when there is one."""
    return f"{module}.{name}" if f"{module}.{name}" in MODULES else module


def _top_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements executed when the module loads (``if TYPE_CHECKING:`` blocks are
    skipped: they run only under a type checker)."""
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        elif isinstance(node, (ast.If, ast.Try)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    yield sub


def lazy_imports(tree: ast.Module) -> set[str]:
    """The parzen modules (below the root) a lazy loader's source names in strings."""
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and node.value.startswith(PACKAGE + ".")
            and node.value in MODULES}


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        if name in LAZY_LOADERS:
            graph[name].update(lazy_imports(tree))
        for node in _top_level_imports(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                assert node.level == 0, f"{name}: use absolute imports"
                targets = [_resolve(node.module or "", a.name) for a in node.names]
            graph[name].update(t for t in targets if t == PACKAGE
                               or t.startswith(PACKAGE + "."))
    return graph


def layer_of(module: str) -> int:
    best = (-1, -1)  # (prefix length, layer)
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best[0]:
                best = (len(p), i)
    assert best[1] >= 0, f"{module} is in no layer: add it to LAYERS (and the diagram)"
    return best[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle_and_a_stray_import() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    import json\n")
    assert [n.lineno for n in function_imports(tree)] == [2]


def test_no_import_cycles() -> None:
    found = cycles(edges())
    assert not found, f"import cycles: {found}"


def test_imports_point_down_the_layers() -> None:
    wrong = [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
             for a, targets in edges().items() for b in sorted(targets)
             if layer_of(b) < layer_of(a)]
    assert not wrong, "imports that point up:\n" + "\n".join(wrong)


def function_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [s for s in ast.walk(node) if isinstance(s, (ast.Import, ast.ImportFrom))]
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_hides_in_a_function(module: str) -> None:
    stray = []
    for node in function_imports(ast.parse(MODULES[module].read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) \
            else [node.module or ""]
        stray += [f"line {node.lineno}: {n}" for n in names
                  if n.split(".")[0] not in OPTIONAL]
    assert not stray, f"{module} imports inside a function: {stray}"


def test_private_modules_stay_in_their_package() -> None:
    wrong = []
    for a, targets in edges().items():
        for b in targets:
            parts = b.split(".")
            private = [i for i, p in enumerate(parts) if p.startswith("_")
                       and not p.startswith("__")]
            if not private:
                continue
            home = ".".join(parts[:private[0]])
            if a != home and not a.startswith(home + "."):
                wrong.append(f"{a} imports {b}")
    assert not wrong, "private modules imported from outside their package:\n" + "\n".join(
        sorted(wrong))


def _loads_by_name(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.Attribute) and node.attr == "import_module"
               or isinstance(node, ast.alias) and node.name == "import_module"
               or isinstance(node, ast.Name) and node.id == "__import__"
               for node in ast.walk(tree))


def test_only_the_listed_modules_load_modules_by_name() -> None:
    loaders = {name for name, path in MODULES.items()
               if _loads_by_name(ast.parse(path.read_text()))}
    assert loaders == set(LAZY_LOADERS) | set(USER_CODE_LOADERS), (
        "a module that imports by name hides its imports from these checks: list it in "
        "LAZY_LOADERS (and keep its module names in string constants) or import normally")


def test_lazy_loaders_name_only_existing_modules() -> None:
    """A misspelt name in a lazy table would fail only when that command or name is used."""
    for name in LAZY_LOADERS:
        tree = ast.parse(MODULES[name].read_text())
        named = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                 and isinstance(node.value, str) and node.value.startswith(PACKAGE + ".")
                 and " " not in node.value}
        assert named and named <= set(MODULES), f"{name} names no such module: " \
            f"{sorted(named - set(MODULES))}"
        assert lazy_imports(tree) == named
