"""The layering in docs/architecture.md, checked on the source: who may import whom, no circles, nothing hidden."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
# Layers from the bottom up; a module may import its own layer and the layers below it.
LAYERS = [
    {"core", "files", "processes"},
    {"nusc", "viz"},
    {"world"},
    {"scenario"},
    {"conditions"},
    {"models", "diffusion", "train"},
    {"pipelines", "perception", "metrics"},
    {"cli", "__init__", "__main__"},
]
LAZY_IMPORTS_ALLOWED = {"dreamdrive.cli"}  # the command imports its stages lazily, so `dreamdrive --help` starts fast


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted((SRC / "dreamdrive").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = ast.parse(path.read_text())
    return out


def _imports(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(module-level, function-local) dreamdrive imports of a module."""
    top, local = set(), set()

    def visit(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            names = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [child.module] + [f"{child.module}.{alias.name}" for alias in child.names]
            for name in names:
                if name.startswith("dreamdrive"):
                    (local if inside else top).add(name)
            visit(child, inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    return top, local


def _resolve(name: str, modules: set[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, layer in enumerate(LAYERS) if part in layer)


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    edges = {}
    for name, tree in modules.items():
        top, local = _imports(tree)
        edges[name] = (
            {_resolve(n, set(modules)) for n in top} - {None, name},
            {_resolve(n, set(modules)) for n in local} - {None, name},
        )
    return modules, edges


def test_no_module_imports_a_layer_above_its_own(graph):
    _, edges = graph
    wrong = [
        (module, target)
        for module, (top, local) in edges.items()
        for target in top | local
        if target != "dreamdrive" and _layer(target) > _layer(module)
    ]
    assert not wrong, wrong


def test_no_import_circle(graph):
    _, edges = graph
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        top, local = edges.get(node, (set(), set()))
        for target in sorted(top | local):
            if state.get(target) == 1:
                raise AssertionError(f"import circle: {' -> '.join(path[path.index(target) :] + [target])}")
            if target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_no_function_local_import_of_the_package_outside_the_command(graph):
    _, edges = graph
    hidden = {
        module: sorted(local) for module, (_, local) in edges.items() if local and module not in LAZY_IMPORTS_ALLOWED
    }
    assert not hidden, hidden


def test_conditions_import_neither_the_world_builder_nor_pipelines(graph):
    _, edges = graph
    for module, (top, local) in edges.items():
        if module.startswith("dreamdrive.conditions"):
            assert not {t for t in top | local if t == "dreamdrive.world.builder" or "pipelines" in t}, module


def test_perception_never_imports_the_generators(graph):
    _, edges = graph
    for module, (top, local) in edges.items():
        if module.startswith("dreamdrive.perception"):
            assert not {t for t in top | local if t.startswith(("dreamdrive.models", "dreamdrive.diffusion"))}, module


def test_core_is_numpy_only(graph):
    modules, _ = graph
    for name, tree in modules.items():
        if not name.startswith("dreamdrive.core"):
            continue
        for node in ast.walk(tree):
            roots = []
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                roots = [node.module.split(".")[0]]
            for root in roots:
                assert root in ("dreamdrive", "numpy") or root in sys.stdlib_module_names, (name, root)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dreamdrive"):
                assert node.module.startswith("dreamdrive.core"), (name, node.module)


def test_no_unsafe_torch_load_in_the_package():
    for path in (SRC / "dreamdrive").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "load":
                for keyword in node.keywords:
                    if keyword.arg == "weights_only":
                        assert getattr(keyword.value, "value", None) is True, f"{path}: torch.load(weights_only=False)"
