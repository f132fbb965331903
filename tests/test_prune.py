from __future__ import annotations

import json

import yaml

from sam3_edge.cli import main
from sam3_edge.prune import find_candidates, prune


def _project(tmp_path):
    cache = tmp_path / ".dvc" / "cache" / "files" / "md5"

    def put(md5: str, content: bytes) -> None:
        path = cache / md5[:2] / md5[2:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    manifest = [{"md5": "aa" + "1" * 30, "relpath": "final.ckpt"}]
    put("bb" + "2" * 30 + ".dir", json.dumps(manifest).encode())
    put("aa" + "1" * 30, b"weights")
    put("cc" + "3" * 30, b"old weights no longer referenced")
    put("dd" + "4" * 30, b"data.json")
    lock = {
        "schema": "2.0",
        "stages": {
            "train": {"cmd": "x", "outs": [{"path": "checkpoints/student", "md5": "bb" + "2" * 30 + ".dir"}]},
            "data": {"cmd": "y", "outs": [{"path": "data/index.json", "md5": "dd" + "4" * 30}]},
        },
    }
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    (tmp_path / "checkpoints" / "student").mkdir(parents=True)
    (tmp_path / "checkpoints" / "student" / "final.ckpt").write_bytes(b"weights")
    (tmp_path / "checkpoints" / "student" / "step-000010.ckpt").write_bytes(b"stale step checkpoint")
    (tmp_path / "checkpoints" / "old_run").mkdir()
    (tmp_path / "checkpoints" / "old_run" / "final.ckpt").write_bytes(b"x" * 100)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "index.json").write_text("{}")
    return tmp_path


def test_prune_lists_only_unreferenced_and_keeps_lock_outs(tmp_path, capsys):
    root = _project(tmp_path)
    cands, _ = find_candidates(root)
    names = sorted(str(c.path.relative_to(root)) for c in cands)
    assert names == [
        ".dvc/cache/files/md5/cc/" + "3" * 30,
        "checkpoints/old_run/final.ckpt",
        "checkpoints/student/step-000010.ckpt",
    ]
    assert main(["prune", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "3 unreferenced" in out
    assert (root / "checkpoints/old_run/final.ckpt").exists()  # dry run deletes nothing

    _, freed = prune(root, yes=True)
    assert freed == len(b"old weights no longer referenced") + len(b"stale step checkpoint") + 100
    assert (root / "checkpoints/student/final.ckpt").exists()
    assert (root / "data/index.json").exists()
    assert (root / ".dvc/cache/files/md5/aa" / ("1" * 30)).exists()
    assert not (root / "checkpoints/old_run/final.ckpt").exists()
    assert find_candidates(root)[0] == []


def test_prune_without_lock_is_an_actionable_error(tmp_path, capsys):
    assert main(["prune", "--root", str(tmp_path)]) == 1
    assert "run `dvc repro` first" in capsys.readouterr().err
