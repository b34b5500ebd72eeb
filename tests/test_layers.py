"""The harness's layer map, checked by parsing its sources (nothing here imports harness).

A module may import only from its own layer or below, with no import cycles, no private names
taken from another module, and no module that only re-exports. Imports inside functions count;
imports under ``if TYPE_CHECKING:`` count only for private names; importlib strings never do.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def readme_layers(readme: Path) -> dict[str, tuple[int, str]]:
    """The layer map, from the README's table (module -> (layer, its one job)): written once,
    where a reader looks for it. Rows look like `| 3 run parts | `store` | the run folder |`."""
    row = re.compile(r"^\| (\d) [a-z ]+ \| `([a-z_.]+)` \| (.+) \|$")
    out = {}
    for line in readme.read_text("utf-8").splitlines():
        if m := row.match(line):
            name = m[2] if m[2] == "harness" else f"harness.{m[2]}"
            out[name] = (int(m[1]), m[3])
    return out


LAYERS = readme_layers(ROOT / "README.md")
HARNESS = ROOT / "harness"


@dataclass(frozen=True)
class Import:
    target: str  # a module of the checked package
    line: int
    in_function: bool
    type_checking: bool
    names: tuple[str, ...]  # names taken from target by `from target import ...`


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module, me: str, is_pkg: bool, modules: set[str]) -> list[Import]:
    def ours(dotted: str) -> bool:
        return dotted.split(".")[0] == me.split(".")[0]

    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if ours(alias.name):
                    found.append(Import(alias.name, node.lineno, in_function, type_checking, ()))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = me.split(".") if is_pkg else me.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            names: list[str] = []
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:  # a submodule through its package
                    found.append(Import(f"{base}.{alias.name}", node.lineno, in_function,
                                        type_checking, ()))
                else:
                    names.append(alias.name)
            if names and ours(base):
                found.append(Import(base, node.lineno, in_function, type_checking,
                                    tuple(names)))
        elif isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING", "typing.TYPE_CHECKING"
        ):
            for child in node.body:
                visit(child, in_function, True)
            for child in node.orelse:
                visit(child, in_function, type_checking)
        else:
            inner = in_function or isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            )
            for child in ast.iter_child_nodes(node):
                visit(child, inner, type_checking)

    visit(tree, False, False)
    return found


def _parse(root: Path) -> dict[str, tuple[Path, ast.Module]]:
    paths = (p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts)
    return {module_name(root, p): (p, ast.parse(p.read_text(), str(p))) for p in paths}


def _graph(parsed: dict[str, tuple[Path, ast.Module]]) -> dict[str, list[Import]]:
    return {
        name: [i for i in _imports(tree, name, path.name == "__init__.py", set(parsed))
               if i.target != name]
        for name, (path, tree) in parsed.items()
    }


def module_graph(root: Path) -> dict[str, list[Import]]:
    """Every module of the package at root -> its imports of the package's own modules."""
    return _graph(_parse(root))


def _only_reexports(tree: ast.Module) -> bool:
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring

    def plain(s: ast.stmt) -> bool:
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            return True
        targets = s.targets if isinstance(s, ast.Assign) else [getattr(s, "target", None)]
        return isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and all(
            isinstance(t, ast.Name) and t.id == "__all__" for t in targets
        )

    return all(plain(s) for s in body) and any(
        isinstance(s, ast.Import) or (isinstance(s, ast.ImportFrom) and s.module != "__future__")
        for s in body
    )


def _shortest_cycle(edges: dict[str, set[str]], start: str) -> list[str]:
    paths, frontier = {start: [start]}, [start]
    while frontier:
        nxt = []
        for m in frontier:
            for t in sorted(edges[m]):
                if t == start:
                    return [*paths[m], start]
                if t not in paths:
                    paths[t] = [*paths[m], t]
                    nxt.append(t)
        frontier = nxt
    return []


def _cycles(edges: dict[str, set[str]]) -> list[tuple[list[str], set[str]]]:
    """For each group of modules that import each other: its shortest cycle through its first
    module, and the whole group."""
    reach = {}
    for m in edges:
        reach[m], todo = set(), list(edges[m])
        while todo:
            if (t := todo.pop()) not in reach[m]:
                reach[m].add(t)
                todo.extend(edges[t])
    found, seen = [], set()
    for start in sorted(edges):
        if start not in seen and start in reach[start]:
            group = {m for m in reach[start] if start in reach[m]}
            seen |= group
            found.append((_shortest_cycle(edges, start), group))
    return found


def _line(i: Import) -> str:
    return f"line {i.line}" + (", inside a function" if i.in_function else "")


def problems(root: Path, layer_map: dict[str, tuple[int, str]]) -> list[str]:
    """Every breach of the layer map by the package at root, one line each."""
    parsed = _parse(root)
    graph = _graph(parsed)
    out = [f"{m} is not in the layer map" for m in graph if m not in layer_map]
    out += [f"layer map names {m}, but there is no such module" for m in layer_map
            if m not in graph]
    for me, imports in graph.items():
        for i in imports:
            if i.target not in graph:
                out.append(f"{me} imports {i.target} at {_line(i)}, but there is no such module")
            elif not i.type_checking and me in layer_map and i.target in layer_map:
                mine, theirs = layer_map[me][0], layer_map[i.target][0]
                if theirs > mine:
                    out.append(f"{me} (layer {mine}) imports {i.target} (layer {theirs}) "
                               f"at {_line(i)}")
            for name in i.names:
                if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
                    out.append(f"{me} imports private name {name} from {i.target} at {_line(i)}")
        if _only_reexports(parsed[me][1]):
            out.append(f"{me} only re-exports (imports and __all__); import from the source")
    edges = {m: {i.target for i in imps if not i.type_checking and i.target in graph}
             for m, imps in graph.items()}
    for cycle, group in _cycles(edges):
        steps = [f"{a} ({_line(next(i for i in graph[a] if i.target == b))})"
                 for a, b in pairwise(cycle)]
        more = f"; all of {', '.join(sorted(group))} import each other" * (len(group) > len(steps))
        out.append(f"import cycle: {' -> '.join([*steps, cycle[0]])}{more}")
    return out


def test_harness_follows_the_layer_map():
    assert len(LAYERS) > 40, "the README's layer table was not found"
    found = problems(HARNESS, LAYERS)
    assert not found, f"{len(found)} layer problem(s):\n" + "\n".join(found)


# The checker on small fake packages.
BASE = {
    "harness/__init__.py": '"""Fake harness: a docstring only."""\n',
    "harness/low.py": "X = 1\n",
    "harness/mid.py": "from . import low\n\nthing = low.X\n",
    "harness/pkg/__init__.py": '"""Docstring only."""\n',
    "harness/pkg/sub.py": "from harness.mid import thing\n\nY = thing\n",
    "harness/top.py": "from . import mid\nfrom .pkg import sub\n\nZ = mid.thing, sub.Y\n",
}
FAKE = {"harness": (0, ""), "harness.low": (0, ""), "harness.mid": (1, ""),
        "harness.pkg": (1, ""), "harness.pkg.sub": (1, ""), "harness.top": (2, "")}


def fake(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {**BASE, **files}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path / "harness"


def test_graph_resolves_relative_and_package_imports(tmp_path):
    graph = module_graph(fake(tmp_path, {}))
    assert [(i.target, i.names) for i in graph["harness.top"]] == [
        ("harness.mid", ()), ("harness.pkg.sub", ())]
    assert [(i.target, i.names) for i in graph["harness.pkg.sub"]] == [
        ("harness.mid", ("thing",))]
    assert graph["harness"] == [] and graph["harness.pkg"] == []


@pytest.mark.parametrize("files, extra, expected", [
    ({"harness/extra.py": "Y = 1\n"}, {}, "harness.extra is not in the layer map"),
    ({}, {"harness.gone": (0, "")}, "layer map names harness.gone, but there is no such module"),
    ({"harness/top.py": "from .gone import x\n"}, {},
     "harness.top imports harness.gone at line 1, but there is no such module"),
    ({"harness/low.py": "from .mid import thing\n"}, {},
     "harness.low (layer 0) imports harness.mid (layer 1) at line 1"),
    ({"harness/low.py": "def f():\n    from harness import top\n"}, {},
     "harness.low (layer 0) imports harness.top (layer 2) at line 2, inside a function"),
    ({"harness/mid.py": "def f():\n    from .pkg import sub\n",
      "harness/pkg/sub.py": "def g():\n    from .. import mid\n"}, {},
     "import cycle: harness.mid (line 2, inside a function) -> harness.pkg.sub (line 2, "
     "inside a function) -> harness.mid"),
    ({"harness/mid.py": "from .pkg import f\n",
      "harness/pkg/__init__.py": "from .sub import Y\nf = 1\n",
      "harness/pkg/sub.py": "import harness.mid\nY = 1\n"}, {},
     "import cycle: harness.mid (line 1) -> harness.pkg (line 1) -> harness.pkg.sub (line 1) "
     "-> harness.mid"),
    ({"harness/top.py": "from .mid import _helper, __version__\n"}, {},
     "harness.top imports private name _helper from harness.mid at line 1"),
    ({"harness/top.py": '"""Doc."""\nfrom __future__ import annotations\n'
      'from .mid import thing\n__all__ = ["thing"]\n'}, {}, "harness.top only re-exports"),
])
def test_checker_reports(tmp_path, files, extra, expected):
    found = problems(fake(tmp_path, files), {**FAKE, **extra})
    assert any(p.startswith(expected) for p in found), found
    assert not any("__version__" in p for p in found)


@pytest.mark.parametrize("files", [
    {},  # docstring-only packages, same-layer imports, `from . import sibling`
    {"harness/low.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                       "    from .mid import thing\n"},
    {"harness/low.py": 'import importlib\n\nmod = importlib.import_module("harness.top")\n'},
    {"harness/pkg/sub.py": "from .. import mid\n\nY = mid.thing\n"},
])
def test_checker_accepts(tmp_path, files):
    assert problems(fake(tmp_path, files), FAKE) == []
