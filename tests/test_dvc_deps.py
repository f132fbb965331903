"""`dvc.yaml` deps are exact on the code side: every module a stage can import is a declared dependency.

A stage that imports a file its deps do not name is not re-run when that file changes: `dvc repro` would keep a
stale model or metric and say "up to date". The import graph is read statically (every ``import`` anywhere in a
file, including the lazy ones inside functions), from the stage script through ``stages/_*.py`` helpers and
``sam3_edge`` modules. Package ``__init__`` files that only re-export (docstring, imports, ``__all__``,
``__version__``) are followed but need not be deps themselves.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for cand in (base / "__init__.py", base.with_suffix(".py")):
        if cand.exists():
            return cand
    return None


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _closure(script: Path) -> set[Path]:
    seen: set[Path] = set()
    todo = [script]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for name in _imports(f):
            if name.startswith("sam3_edge"):
                parts = name.split(".")
                todo += [m for i in range(1, len(parts) + 1) if (m := _module_file(".".join(parts[:i])))]
            elif (helper := ROOT / "stages" / f"{name}.py").exists():
                todo.append(helper)
    return seen


def _reexport_only(path: Path) -> bool:
    if path.name != "__init__.py":
        return False
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # docstring
            continue
        if isinstance(node, ast.Assign) and all(
            isinstance(t, ast.Name) and t.id in ("__all__", "__version__") for t in node.targets
        ):
            continue
        return False
    return True


# `evaluate` loads its model through ``sam3_edge.predictors.load_predictor``, which imports the package of
# the spec's kind only (teacher:, student:, pte:): an item depends on its own kind's packages, not the others'.
KIND_PACKAGES = {
    "teacher": ("src/sam3_edge/teacher/",),
    "student": ("src/sam3_edge/models/",),
    "pte": ("src/sam3_edge/deploy/", "src/sam3_edge/models/"),
}


def _lazy_exempt(cmd: str) -> tuple[str, ...]:
    spec = re.search(r"--spec (\w+):", cmd)
    if not spec:
        return ()
    own = KIND_PACKAGES[spec.group(1)]
    return tuple(p for pkgs in KIND_PACKAGES.values() for p in pkgs if p not in own)


def _stages() -> list[tuple[str, str, list[str]]]:
    """(address, cmd, deps) of every stage as DVC resolves it (``vars``, ``foreach`` and ``matrix`` expanded)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return [(s.addressing, s.cmd, [str(d.def_path) for d in s.deps]) for s in repo.index.stages]


STAGES = _stages()


@pytest.mark.parametrize(("stage", "cmd", "deps"), STAGES, ids=[s[0] for s in STAGES])
def test_stage_deps_cover_its_imports(stage, cmd, deps):
    script = re.search(r"python (stages/\w+\.py)", cmd)
    assert script, f"{stage}: no `python stages/<x>.py` in its cmd"
    covered = [d.rstrip("/") for d in deps]
    exempt = _lazy_exempt(cmd)
    rel = [str(f.relative_to(ROOT)) for f in _closure(ROOT / script.group(1)) if not _reexport_only(f)]
    missing = sorted(
        r for r in rel if not r.startswith(exempt) and not any(r == d or r.startswith(d + "/") for d in covered)
    )
    assert not missing, f"{stage}: imports files that are not deps in dvc.yaml: {missing}"
