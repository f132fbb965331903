"""Static guards: the code base never loads untrusted files in a way that can run code.

Each check scans every Python file under src/ and stages/; a new `torch.load(...)` without
``weights_only=True``, any pickle use, ``trust_remote_code=True`` or an unfiltered tar extraction fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted([*(ROOT / "src").rglob("*.py"), *(ROOT / "stages").rglob("*.py")])


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            yield owner, name, node


def _kw(node: ast.Call, key: str):
    for kw in node.keywords:
        if kw.arg == key:
            return kw.value
    return None


def find_violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            if any(n and n.split(".")[0] in {"pickle", "dill", "cloudpickle", "marshal"} for n in names):
                found.append(f"{path}:{node.lineno}: pickle-like import")
    for owner, name, node in _calls(tree):
        if owner == "torch" and name == "load":
            wo = _kw(node, "weights_only")
            if not (isinstance(wo, ast.Constant) and wo.value is True):
                found.append(f"{path}:{node.lineno}: torch.load without weights_only=True")
        trc = _kw(node, "trust_remote_code")
        if trc is not None and not (isinstance(trc, ast.Constant) and trc.value is False):
            found.append(f"{path}:{node.lineno}: trust_remote_code not literally False")
        if name in {"extractall", "extract"} and owner not in {"zipfile"}:
            filt = _kw(node, "filter")
            if filt is None:
                found.append(f"{path}:{node.lineno}: tar {name} without filter=")
        if name in {"eval", "exec"} and isinstance(node.func, ast.Name):
            found.append(f"{path}:{node.lineno}: {name}() call")
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unsafe_loading(path):
    assert find_violations(path) == []


def test_guard_catches_unsafe_code(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nimport torch, tarfile\n"
        "torch.load('x')\nm = f(trust_remote_code=True)\ntarfile.open('a').extractall('d')\n"
    )
    found = find_violations(bad)
    assert len(found) == 4, found
