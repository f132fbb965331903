"""The library's layering: every import inside ``src/sam3_edge`` points down the one list below.

Imports placed inside functions count like module-level ones (``ast.walk`` sees every ``import`` statement), so a
lazy import cannot hide an upward edge. Packages in one layer are siblings and may not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sam3_edge"

# bottom to top; a package (or top-level module) may import only from layers below its own, and itself
LAYERS: list[tuple[str, ...]] = [
    ("config", "types", "utils"),  # foundation: no sam3_edge imports at all
    ("core",),  # losses, matcher, metrics, checkpoint format
    ("data",),
    ("models", "teacher", "eval"),  # eval scores any Predictor; it never builds one
    ("cache", "train", "deploy"),
    ("predictors",),  # model spec -> Predictor: teacher, student or .pte
    ("report",),
    ("params", "prune"),
    ("cli",),
]
LAYER_OF = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _unit(path: Path, src: Path) -> str:
    """The layer unit of a file: its first folder under ``src`` (a package) or its module name."""
    rel = path.relative_to(src)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _module_name(path: Path, src: Path) -> list[str]:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ["sam3_edge", *parts]


def _is_module(path: Path) -> bool:
    return path.is_dir() or path.with_suffix(".py").is_file()


def imported_units(path: Path, src: Path) -> list[tuple[int, str]]:
    """(line, unit) for every sam3_edge import in ``path``, module-level or inside a function, relative or not."""
    package = _module_name(path, src)[:-1]  # the package a relative import starts from (also for __init__.py)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
                names = [".".join(target)] if node.module else [".".join([*target, a.name]) for a in node.names]
            elif node.module == "sam3_edge":  # `from sam3_edge import x`: a module, or a name of the package root
                names = [f"sam3_edge.{a.name}" for a in node.names if _is_module(src / a.name)]
            elif node.module:
                names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "sam3_edge" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def layering_violations(src: Path) -> list[str]:
    problems = []
    for path in sorted(src.rglob("*.py")):
        unit = _unit(path, src)
        if unit == "__init__":
            continue
        if unit not in LAYER_OF:
            problems.append(f"{path.relative_to(src)}: {unit!r} is in no layer of tests/test_layers.py LAYERS")
            continue
        for line, target in imported_units(path, src):
            if target == unit:
                continue
            if target not in LAYER_OF:
                problems.append(f"{path.relative_to(src)}:{line}: imports {target!r}, which is in no layer")
            elif LAYER_OF[target] >= LAYER_OF[unit]:
                how = "sibling" if LAYER_OF[target] == LAYER_OF[unit] else "upward"
                problems.append(f"{path.relative_to(src)}:{line}: {unit} -> {target} ({how} import)")
    return problems


def test_every_import_points_down_the_layers():
    assert layering_violations(SRC) == []


def test_every_package_has_a_layer():
    units = {_unit(p, SRC) for p in SRC.rglob("*.py")} - {"__init__"}
    assert units <= set(LAYER_OF), sorted(units - set(LAYER_OF))


@pytest.mark.parametrize(
    ("where", "code", "expected"),
    [
        ("models/factory.py", "def f():\n    from sam3_edge.train.loop import x\n", "models -> train (upward import)"),
        ("teacher/evaluate.py", "import sam3_edge.eval.driver\n", "teacher -> eval (sibling import)"),
        ("core/losses.py", "from ..data import io\n", "core -> data (upward import)"),
        ("eval/driver.py", "from sam3_edge import predictors\n", "eval -> predictors (upward import)"),
    ],
)
def test_the_check_catches_upward_and_sibling_imports(tmp_path, where, code, expected):
    file = tmp_path / "sam3_edge" / where
    file.parent.mkdir(parents=True)
    file.write_text(code)
    (tmp_path / "sam3_edge" / "predictors.py").write_text("")
    problems = layering_violations(tmp_path / "sam3_edge")
    assert any(expected in p for p in problems), problems


def test_downward_imports_pass(tmp_path):
    file = tmp_path / "sam3_edge" / "train" / "loop.py"
    file.parent.mkdir(parents=True)
    file.write_text("from sam3_edge.core.losses import x\nfrom ..models import y\nfrom .phases import z\n")
    assert layering_violations(tmp_path / "sam3_edge") == []
