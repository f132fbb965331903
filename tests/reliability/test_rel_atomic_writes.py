"""Atomic writes everywhere: every file writer in src/ and stages/ runs inside ``with atomic_path(...)`` (or is a
reviewed exception below), and atomic_path / remove_stale_temps behave as the kill tests rely on."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from sam3_edge.utils import atomic_path, remove_stale_temps, write_json

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*(ROOT / "src").rglob("*.py"), *(ROOT / "stages").rglob("*.py")])

# method names that write a file given a path; bare function names likewise (``open`` is checked by its mode)
WRITERS = {
    "write_text",
    "write_bytes",
    "save_file",
    "save",
    "save_pretrained",
    "dump",
    "savez",
    "savez_compressed",
    "savefig",
    "to_csv",
}
BARE_WRITERS = {"open", "save_file", "save_inputs", "save_safetensors"}
# (file, enclosing function) -> why a non-atomic write there is safe. Keep each reason checkable.
REVIEWED = {
    ("src/sam3_edge/utils.py", "atomic_path"): "re-opens its own temporary file to fsync it",
    ("src/sam3_edge/utils.py", "save_safetensors"): "a writer helper: every caller must use atomic_path (checked)",
    ("src/sam3_edge/data/tar_safe.py", "extract_tar"): "writes inside a .partial folder renamed into place at the end",
    ("src/sam3_edge/deploy/benchmark.py", "_run_worker"): "spec file in benchmark_model's TemporaryDirectory",
    ("src/sam3_edge/deploy/benchmark.py", "benchmark_model"): "clip file in its own TemporaryDirectory",
    ("src/sam3_edge/deploy/benchmark.py", "_run_parts"): "text encoding in benchmark_model's TemporaryDirectory",
    ("src/sam3_edge/deploy/bench_worker.py", "measure"): "outputs in the parent's TemporaryDirectory",
    ("src/sam3_edge/deploy/bench_worker.py", "main"): "result file in the parent's TemporaryDirectory",
    ("src/sam3_edge/deploy/bench_worker.py", "_reset_hwm"): "a /proc control file (resets VmHWM), not data",
    ("src/sam3_edge/report/overlay.py", "encode_image"): "encodes into an in-memory BytesIO buffer",
    ("src/sam3_edge/report/figures.py", "_render"): "savefig into an in-memory BytesIO buffer",
    ("src/sam3_edge/deploy/inputs.py", "save_inputs"): "a writer helper: every caller must use atomic_path (checked)",
    ("src/sam3_edge/teacher/train.py", "save_bootstrap"): "save_pretrained into a scratch dir, os.replace'd per file",
}
# Gaps reported to their owners, not fixed here (the owner was editing the file). test_known_gaps_are_current
# fails once one is fixed, so this list cannot go stale.
KNOWN_GAPS: dict[tuple[str, str], str] = {
    # (file, function) -> why an in-place write is still there; each entry must still be found (test below)
}


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _inside_atomic(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if (
                    isinstance(call, ast.Call)
                    and getattr(call.func, "id", getattr(call.func, "attr", "")) == "atomic_path"
                ):
                    return True
    return False


def _function(node: ast.AST, parents: dict) -> str:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node.name
    return "<module>"


def _write_mode(call: ast.Call) -> bool:
    mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(c in mode.value for c in "wax+")


def find_unsafe_writes(path: Path, rel: str, *, allowed: dict = REVIEWED) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = _parents(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        is_attr = isinstance(node.func, ast.Attribute)
        name = node.func.attr if is_attr else getattr(node.func, "id", "")
        owner = node.func.value if is_attr else None
        if name == "dump" and not (isinstance(owner, ast.Name) and owner.id in {"json", "yaml", "pickle"}):
            continue
        if name == "save" and isinstance(owner, ast.Name) and owner.id in {"mlflow"}:
            continue
        if name == "open":
            is_writer = _write_mode(node)
        else:
            is_writer = name in (WRITERS if is_attr else BARE_WRITERS)
        if not is_writer or _inside_atomic(node, parents):
            continue
        func = _function(node, parents)
        if (rel, func) in allowed:
            continue
        found.append(f"{rel}:{node.lineno} {name}() in {func}() writes outside atomic_path")
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_writer_is_atomic(path):
    rel = str(path.relative_to(ROOT))
    assert find_unsafe_writes(path, rel, allowed={**REVIEWED, **KNOWN_GAPS}) == []


def test_known_gaps_are_current():
    for rel, func in sorted(KNOWN_GAPS):
        found = find_unsafe_writes(ROOT / rel, rel)
        assert any(f" in {func}() " in f for f in found), f"{rel}:{func} is fixed: remove it from KNOWN_GAPS"


def test_audit_catches_a_plain_write(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import json, torch\nfrom safetensors.torch import save_file\n"
        "def f(p, t):\n    p.write_text('x')\n    save_file(t, p)\n    torch.save(t, p)\n"
        "    with open(p, 'w') as fh:\n        json.dump({}, fh)\n"
        "def g(p, t):\n    with atomic_path(p) as tmp:\n        save_file(t, tmp)\n        open(tmp, 'rb')\n"
    )
    assert len(find_unsafe_writes(bad, "bad.py")) == 5
    helper = tmp_path / "helper.py"
    helper.write_text("def h(p, x):\n    save_inputs(p, x)\n    Image.new('RGB', (1, 1)).save(p)\n    save(p)\n")
    assert len(find_unsafe_writes(helper, "helper.py")) == 2  # a bare local save() closure is not a writer


def test_atomic_path_failure_leaves_old_content_and_no_temp(tmp_path):
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"v": 2, "trunc')
        raise RuntimeError("killed mid-write")
    assert target.read_text().strip().endswith("}") and '"v": 1' in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_atomic_outputs_get_umask_permissions_not_0600(tmp_path):
    """mkstemp creates 0600 files: outputs shared with other users / the DVC cache must follow the umask."""
    mask = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {})
    finally:
        os.umask(mask)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644


def test_remove_stale_temps_removes_only_atomic_temps(tmp_path):
    keep = [
        tmp_path / "shard-00000.safetensors",
        tmp_path / ".gitignore",
        tmp_path / "notes.tmp",
        tmp_path / ".tmpdir1",
    ]
    for p in keep[:-1]:
        p.write_text("x")
    keep[-1].mkdir()
    stale = [tmp_path / ".shard-00001.safetensors.ab12_xyz.tmp", tmp_path / ".tmptGyow2"]
    for p in stale:
        p.write_text("partial")
    assert remove_stale_temps(tmp_path) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in keep)
    assert remove_stale_temps(tmp_path / "missing") == []


def test_safetensors_writes_through_a_dot_tmp_file_that_remove_stale_temps_knows(tmp_path):
    """safetensors' save_file (Rust) writes into ".tmpXXXXXX" beside its target and renames it: a kill -9 in
    between leaves that file, so remove_stale_temps must recognise the name (seen in a killed cache_teacher run)."""
    import threading
    import time

    import torch
    from safetensors.torch import save_file

    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(p.name for p in tmp_path.iterdir())
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(20):
            save_file({"x": torch.zeros(4_000_000)}, str(tmp_path / f"s{i}.safetensors"))
            if any(n.startswith(".tmp") for n in seen):
                break
    finally:
        done.set()
        watcher.join()
    temps = sorted(n for n in seen if n.startswith(".tmp"))
    if not temps:
        pytest.skip("this safetensors version wrote its files in place (no temporary file observed)")
    for name in temps:
        (tmp_path / name).write_text("partial")
    assert {p.name for p in remove_stale_temps(tmp_path)} == set(temps)
