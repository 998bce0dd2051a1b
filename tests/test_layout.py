"""The package's import graph: no cycle, and each stage imports only from the stages below it
(DESIGN.md), counting imports inside functions too; imports for type hints alone
(`if TYPE_CHECKING:`) are not run, so they do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import grokinterp

ROOT = Path(grokinterp.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST):
    """Every node of `tree` except those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def import_graph() -> dict[str, set[str]]:
    """module -> the grokinterp modules it imports anywhere in its body."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("grokinterp"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("grokinterp")}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in graph[node]:
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "grokinterp.models.transformer" in graph and "grokinterp.bases.irreps" in graph
    assert cycles(graph) == []


STAGES = (
    "core",
    "models",
    "storage",
    "training",
    "analysis",
    "prediction",
    "report",
    "sweep",
    "papers",
    "cli",
)
"""The stages, lowest first. `core` is every top-level module and tasks/, bases/; each other stage
is the package of its name."""

UPWARD_TODAY: set[tuple[str, str]] = set()
"""The imports that still point up a stage: none."""


def stage_of(module: str) -> str | None:
    """The stage of a grokinterp module; None for the package itself."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    return parts[1] if parts[1] in STAGES else "core"


def upward_imports(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """(importer, imported) pairs where the imported module's stage is above the importer's."""
    found = set()
    for module, imported in graph.items():
        here = stage_of(module)
        for other in imported:
            there = stage_of(other)
            if here and there and STAGES.index(there) > STAGES.index(here):
                found.add((module, other))
    return found


def test_the_layering_check_finds_a_planted_upward_import():
    graph = {
        "grokinterp.storage.store": {"grokinterp.report.page", "grokinterp.config"},
        "grokinterp.report.page": {"grokinterp.storage.store"},
        "grokinterp.tasks.base": {"grokinterp.models"},
    }
    assert upward_imports(graph) == {
        ("grokinterp.storage.store", "grokinterp.report.page"),
        ("grokinterp.tasks.base", "grokinterp.models"),
    }


def test_each_stage_imports_only_from_the_stages_below_it():
    graph = import_graph()
    assert {stage_of(m) for m in graph} == {None, *STAGES}
    assert upward_imports(graph) == UPWARD_TODAY


REPORT_MAY_NOT_IMPORT = (
    "torch",
    "grokinterp.models",
    "grokinterp.storage.run",
    "grokinterp.analysis.views",
    "grokinterp.analysis.measures",
    "grokinterp.analysis.columns",
)
"""What the report stage never imports (submodules included): it draws the analysis directory
alone, so it runs no model and reads no run directory. From `grokinterp.storage.store` it takes
`atomic_write` only (none of the checkpoint readers)."""


def report_violations(source: str) -> list[str]:
    """The imported names (`module.name` for a `from` import) in a module's source, anywhere in
    its body, that the report may not import."""
    found = set()
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("grokinterp.storage.store"):
                if name != "grokinterp.storage.store.atomic_write":
                    found.add(name)
            elif any(name == bad or name.startswith(bad + ".") for bad in REPORT_MAY_NOT_IMPORT):
                found.add(name)
    return sorted(found)


def test_the_report_check_finds_planted_imports():
    planted = """
import torch.nn
from grokinterp import models
from grokinterp.storage import run, store
from grokinterp.storage.store import atomic_write, load_checkpoint
from grokinterp.storage.analysis_format import load_analysis
def f():
    from grokinterp.analysis.measures.logits import fit_logits
"""
    assert report_violations(planted) == [
        "grokinterp.analysis.measures.logits.fit_logits",
        "grokinterp.models",
        "grokinterp.storage.run",
        "grokinterp.storage.store",
        "grokinterp.storage.store.load_checkpoint",
        "torch.nn",
    ]


def test_the_report_imports_no_torch_no_model_and_no_run_reader():
    pages = sorted((ROOT / "report").glob("*.py"))
    assert {p.name for p in pages} >= {"page.py", "figures.py", "components.py"}
    for path in pages:
        assert report_violations(path.read_text()) == [], path.name
