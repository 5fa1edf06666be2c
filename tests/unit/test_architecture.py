"""The stages stand side by side on the run contracts: a walk over every import of ``autotag/``.

A *part* is a sub-package of ``autotag`` (``data``, ``models``, ``train``, ...) or a top-level
module (``storage``, ``layout``, ``predictions``, ``config``, ...); ``from autotag import
SAMPLE_RATE`` is the package root, which imports nothing.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "autotag"
STAGES = ("train", "infer", "evaluate")
CONTRACTS = ("data", "models", "storage", "layout", "predictions")
FORBIDDEN = {
    "evaluate": {"models", "infer", "train"},
    "infer": {"train", "evaluate"},
    "train": {"evaluate", "infer"},
    **{contract: set(STAGES) for contract in CONTRACTS},
}
"""Part → parts it must not import (the first three are the issue's rules; the contracts sit below
every stage)."""


def _part(dotted: str) -> str:
    """``autotag.evaluate.artefacts`` → ``evaluate``; ``autotag.storage`` → ``storage``; ``autotag`` → ``autotag``."""
    names = dotted.split(".")
    return names[1] if len(names) > 1 else "autotag"


def _imports(path: Path) -> set[str]:
    """Dotted ``autotag`` modules imported anywhere in ``path`` (also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "autotag"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "autotag":
            if node.module == "autotag":  # from autotag import layout / SAMPLE_RATE
                found |= {f"autotag.{a.name}" if (PACKAGE / f"{a.name}.py").exists() or (PACKAGE / a.name).is_dir()
                          else "autotag" for a in node.names}
            else:
                found.add(node.module)
    return found


def _graph() -> dict[str, dict[str, list[str]]]:
    """Part → imported part → the files that import it."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        source = _part(".".join(relative.parts).removesuffix(".__init__"))
        for target in {_part(module) for module in _imports(path)} - {source}:
            graph[source][target].append(str(relative))
    return graph


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_no_part_imports_what_it_must_not(part):
    imported = _graph().get(part, {})
    bad = {target: files for target, files in imported.items() if target in FORBIDDEN[part]}
    assert not bad, f"autotag/{part} imports {sorted(bad)}: {bad}"


def test_no_import_cycle_between_parts():
    graph = _graph()
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, {})):
            if state.get(target) == "open":
                cycle = [*trail[trail.index(target):], target] if target in trail else [node, target]
                raise AssertionError(f"import cycle between parts: {' -> '.join(cycle)} "
                                     f"({node} -> {target} in {graph[node][target]})")
            if target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for part in sorted(graph):
        if part not in state:
            visit(part, [part])


def test_the_walk_sees_the_imports():
    graph = _graph()
    assert "models" in graph["infer"] and "predictions" in graph["evaluate"] and "data" in graph["models"]
