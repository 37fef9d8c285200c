"""The package's layers, as the README's layout section draws them: a module imports only from its
own layer or the layers below it, and the pure transforms do not import Dagster."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "retail_assets"

# Top to bottom; a module may import its own layer and any layer after it.
LAYERS = [
    {"cli"},
    {"dev"},
    {"definitions"},
    {"orchestration"},
    {"assets"},
    {"loads"},
    {"resources", "streaming"},
    {"storage", "servers"},
    {"transforms"},
    {"settings"},
]


def layer_of(part: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if part in names)


def imports(path: Path) -> set[str]:
    """Every absolute module name the file imports, at any depth (function-level ones too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def top_part(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_every_module_has_a_layer():
    assert {top_part(p) for p in MODULES} <= set().union(*LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_up_a_layer(path):
    own = layer_of(top_part(path))
    upward = sorted(
        name
        for name in imports(path)
        if name.startswith("retail_assets.")
        and name.split(".")[1] in set().union(*LAYERS)
        and layer_of(name.split(".")[1]) < own
    )
    assert not upward, f"{path.name} imports from a higher layer: {upward}"


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in MODULES
        if top_part(p) == "transforms" or (top_part(p) == "storage" and p.name != "resource.py")
    ],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_pure_layers_do_not_import_dagster(path):
    """Transforms are pure functions; storage (but its resource) is plain Spark and pyarrow."""
    assert not any(name.split(".")[0].startswith("dagster") for name in imports(path))
