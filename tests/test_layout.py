"""The package's layout holds: folders are layers, imports only point down (or within a layer), the
module graph has no cycle, and the README's Layout section names every module.

Reads the source with ``ast`` (imports inside functions count; ``TYPE_CHECKING`` ones do too: an
annotation that needs a higher layer is a design smell as much as an import)."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import lakebase_spark

PACKAGE = Path(lakebase_spark.__file__).parent
README = Path(__file__).resolve().parents[1] / "README.md"

#: Bottom to top. A module may import its own layer and the ones below; the package's ``__init__``
#: (the public names, imported on first use) and ``__main__`` sit above everything.
LAYERS: list[set[str]] = [
    # the vocabulary every layer uses
    {"errors", "targets", "names", "redaction", "sessions", "_api", "_lazy", "_deprecations", "_moved"},
    {"tokens"},  # credentials and the token broker
    {"serving"},  # the broker service for the JVMs
    {"postgres", "spark"},  # driver-side Postgres logins; the JDBC path's Spark integration
    {"reading", "writing", "sharding", "datasource", "changes", "sql"},  # the data paths (a module-level DAG)
    {"testing"},  # the emulator
    {"cli"},  # the command, doctor, demo
]
TOP = {"__init__", "__main__"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        here = _module(path)
        package = here if path.name == "__init__.py" else here.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if package else []
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif (node.module or "").startswith("lakebase_spark."):
                target = node.module.removeprefix("lakebase_spark.")  # type: ignore[union-attr]
            else:
                continue
            names = [f"{target}.{a.name}" if target else a.name for a in node.names]
            for name in [*names, target]:
                if name in modules and name != here:
                    graph[here].add(name)
                    break
    return graph


def _layer(module: str) -> int:
    top = module.split(".")[0]
    if top in TOP:
        return len(LAYERS)
    for rank, layer in enumerate(LAYERS):
        if top in layer:
            return rank
    raise AssertionError(f"{module} is in no layer: add its folder or root module to LAYERS (and the README)")


def test_every_import_points_down_or_within_its_layer() -> None:
    upward = [f"{a} -> {b}" for a, targets in _imports().items() for b in targets if _layer(b) > _layer(a)]
    assert upward == []


def test_the_module_graph_has_no_cycle() -> None:
    graph = _imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in list(graph):
        if module not in index:
            visit(module)
    assert cycles == []


#: The data paths' folders that import each other both ways: the jar-free path is both a way to run
#: read() and write() (which dispatch to it with jar_free=True) and a user of their planning (key
#: ranges, the write's plan and commit log). Nothing else may: a concept two folders share lives below.
TWO_WAY = {("datasource", "reading"), ("datasource", "writing")}


def test_the_data_path_folders_import_each_other_one_way() -> None:
    data_paths = LAYERS[4]
    folders = {(a.split(".")[0], b.split(".")[0]) for a, targets in _imports().items() for b in targets}
    edges = {(a, b) for a, b in folders if a != b and a in data_paths and b in data_paths}
    both = {tuple(sorted(edge)) for edge in edges if edge[::-1] in edges}
    assert both == TWO_WAY


def test_every_folder_and_module_is_in_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        _layer(_module(path))


def test_no_module_is_over_450_lines() -> None:
    long = {_module(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}


def _layout_sections() -> dict[str, str]:
    """The README's Layout block, by package folder: ``""`` for the package root's own lines."""
    block = re.search(r"## Layout\n.*?```\n(.*?)```", README.read_text(), re.S)
    assert block, "README has no Layout block"
    lines = block.group(1).splitlines()
    start = lines.index(next(line for line in lines if line.startswith("python/lakebase_spark/")))
    sections: dict[str, str] = defaultdict(str)
    current = ""
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break  # the next top-level entry: the package's part of the block ends
        entry = re.match(r"  (\w+)/\s", line)
        if entry:
            current = entry.group(1)
        elif re.match(r"  \S", line):
            current = ""
        sections[current] += line + "\n"
    return sections


def test_the_readme_layout_names_every_module_in_its_folder() -> None:
    sections = _layout_sections()
    missing = [
        _module(path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py")
        and path.name not in sections.get("" if path.parent == PACKAGE else path.parent.name, "")
    ]
    assert missing == []
    named = {folder for folder in sections if folder}
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert named == folders


def test_old_module_paths_still_import_the_moved_module_with_a_warning() -> None:
    import importlib
    import sys
    import warnings

    from lakebase_spark import _moved

    for old, new in _moved.MOVED.items():
        sys.modules.pop(old, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)
        assert [str(w.message).split(";")[0] for w in caught] == [f"{old} moved to {new}"]
        assert caught[0].category is DeprecationWarning
        sys.modules.pop(old, None)  # leave no alias behind for other tests


def test_the_old_demo_module_still_runs_with_python_m() -> None:
    from .jobs import run_python

    done = run_python("-W", "always::DeprecationWarning", "-m", "lakebase_spark.demo", "--help", timeout=60)
    assert "usage: python -m lakebase_spark.cli.demo" in done.stdout
    assert "lakebase_spark.demo moved to lakebase_spark.cli.demo" in done.stderr


#: The JVM side's packages under io.lakebase.spark, bottom to top: each imports only those below it
#: (``read`` and ``write`` sit side by side and import neither), and the root holds the entry points
#: Spark and Python name (the provider, the two COPY sources, doctor's check).
JAVA = Path(__file__).resolve().parents[1] / "jvm" / "src" / "main" / "java" / "io" / "lakebase" / "spark"
JAVA_LAYERS: list[set[str]] = [{"core"}, {"tokens"}, {"connection"}, {"read"}, {"write"}, {"catalog"}, {""}]
JAVA_SIDE_BY_SIDE = {"read", "write"}


def _java_package(path: Path) -> str:
    return "" if path.parent == JAVA else path.parent.relative_to(JAVA).as_posix().replace("/", ".")


def test_the_jvm_packages_import_each_other_one_way() -> None:
    rank = {package: i for i, layer in enumerate(JAVA_LAYERS) for package in layer}
    wrong = []
    for path in sorted(JAVA.rglob("*.java")):
        own = _java_package(path)
        assert own in rank, f"{path} is in no layer of JAVA_LAYERS"
        for imported in re.findall(
            r"^import io\.lakebase\.spark\.(?:(\w+)\.)?[A-Z]\w*;", path.read_text(), re.M
        ):
            side_by_side = {own, imported} <= JAVA_SIDE_BY_SIDE and own != imported
            if rank[imported] > rank[own] or side_by_side:
                wrong.append(f"{path.relative_to(JAVA)} imports {imported or 'the root'}")
    assert wrong == []


def test_no_java_class_is_over_450_lines() -> None:
    long = {
        str(p.relative_to(JAVA)): n
        for p in JAVA.rglob("*.java")
        if (n := len(p.read_text().splitlines())) > 450
    }
    assert long == {}
