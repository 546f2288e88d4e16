"""The import rules of ``docs``' DESIGN (layout section), checked on the source tree.

- ``agent`` -> ``esapi_bridge`` (port and DTOs) <- adapters (``mock_tps``, the ESAPI adapter);
- nothing in ``agent`` imports ``mock_tps``, ``pythonnet`` or ``clr`` except ``agent/cli``, the
  composition root;
- ``mock_tps`` imports the DTOs only (never ``agent``); ``esapi_bridge`` never imports
  ``mock_tps`` or ``agent``; only ``esapi_bridge/esapi`` may import pythonnet;
- no import cycle between modules (imports inside functions and ``TYPE_CHECKING`` blocks count).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "esapi_bridge", "mock_tps", "rtplan_common", "site_templates")
DOTNET = ("clr", "pythonnet", "Python", "System")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[_module_name(path)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every imported module name (absolute, as far as it is first-party) with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in MODULES else target), node.lineno


def _violations(rule: str, source: str, allowed_under: str | None, forbidden: tuple[str, ...]):
    found = []
    for name, path in MODULES.items():
        if not (name == source or name.startswith(source + ".")):
            continue
        if allowed_under and (name == allowed_under or name.startswith(allowed_under + ".")):
            continue
        for target, line in _imports(name, path):
            top = target.split(".")[0]
            if top in forbidden or target in forbidden:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {target} ({rule})")
    return found


def test_the_tree_has_the_designed_packages() -> None:
    for room in ("agent.session", "agent.cli", "agent.policies.rule", "mock_tps.factory"):
        assert room in MODULES, f"{room} is missing from the layout"
    assert "esapi_bridge.adapters.mock" not in MODULES


@pytest.mark.parametrize(
    ("rule", "source", "allowed_under", "forbidden"),
    [
        ("agent stays off the simulated TPS", "agent", "agent.cli", ("mock_tps",)),
        ("agent stays off .NET", "agent", "agent.cli", DOTNET),
        ("the port knows no adapter of its own kind", "esapi_bridge", None, ("mock_tps", "agent")),
        ("only the ESAPI adapter touches .NET", "esapi_bridge", "esapi_bridge.esapi", DOTNET),
        ("the simulated TPS knows only the DTOs", "mock_tps", None, ("agent",)),
        ("shared utilities depend on nothing of ours", "rtplan_common", None, PACKAGES[:3]),
    ],
)
def test_import_rule(
    rule: str, source: str, allowed_under: str | None, forbidden: tuple[str, ...]
) -> None:
    assert _violations(rule, source, allowed_under, forbidden) == []


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, _ in _imports(name, path):
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The checker itself: a two-module circle and a self-contained chain."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
