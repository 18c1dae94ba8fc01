"""The package layout keeps its layers: no import loops, and imports point one way.

Every ``import`` in ``src/aiodirac`` counts, those under ``TYPE_CHECKING`` and inside functions
too: a lazy import is still a dependency, only a later one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "aiodirac"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: -(level - 1)]
    return ".".join([*base, name] if name else base)


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                target = (
                    _resolve(name, path.name == "__init__.py", node.level, node.module)
                    if node.level
                    else node.module or ""
                )
                deps.add(target)
                # ``from pkg import module`` depends on the module itself
                deps.update(
                    f"{target}.{alias.name}"
                    for alias in node.names
                    if f"{target}.{alias.name}" in modules
                )
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _parents_removed(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # A package's __init__ re-exporting its own modules is not a loop with them.
    return {
        name: {d for d in deps if not d.startswith(name + ".") and not name.startswith(d + ".")}
        for name, deps in graph.items()
    }


def test_no_import_loops() -> None:
    assert _cycles(_parents_removed(_import_graph())) == []


# Layers, lowest first. A module may import its own layer and the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("aiodirac._result", "aiodirac._resource", "aiodirac._text")),
    # the error tree types its details with the job layer's statuses
    ("job", ("aiodirac._job", "aiodirac._exceptions")),
    ("backends", ("aiodirac.backends",)),
    ("engine", ("aiodirac._engine", "aiodirac._journal", "aiodirac._report")),
    (
        "facades",
        (
            "aiodirac._client",
            "aiodirac._sync",
            "aiodirac._config",
            "aiodirac._campaign",
            "aiodirac._dirac_print",
        ),
    ),
]


def _layer(module: str) -> int | None:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


@pytest.mark.parametrize("layer", [name for name, _ in LAYERS])
def test_imports_point_down(layer: str) -> None:
    rank = [name for name, _ in LAYERS].index(layer)
    upward = sorted(
        f"{module} -> {dep}"
        for module, deps in _import_graph().items()
        if _layer(module) == rank
        for dep in deps
        if (dep_rank := _layer(dep)) is not None and dep_rank > rank
    )
    assert upward == []


def test_only_the_entry_point_imports_the_cli() -> None:
    importers = sorted(
        module
        for module, deps in _import_graph().items()
        if not module.startswith("aiodirac.cli")
        and any(d == "aiodirac.cli" or d.startswith("aiodirac.cli.") for d in deps)
    )
    assert importers == []


def test_child_processes_find_the_package_where_it_is() -> None:
    # The local agent and the download helpers are started with this folder on their path.
    from aiodirac._engine.download._transfer_pool import _PACKAGE_ROOT
    from aiodirac.backends.local._agent_control import PACKAGE_ROOT

    assert Path(PACKAGE_ROOT) == Path(_PACKAGE_ROOT) == SRC
    assert (SRC / "aiodirac" / "__init__.py").is_file()


def test_every_module_is_described_in_the_architecture_page() -> None:
    page = (SRC.parent / "docs" / "architecture.md").read_text()
    missing = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if f"`{p.relative_to(PACKAGE)}`" not in page
    ]
    assert missing == []
