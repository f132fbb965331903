"""The resume key of the training stages (``stages/_train.py``): params, input files and code all enter it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from sam3_edge.train.distributed import DistInfo
from sam3_edge.utils import sources_digest

STAGES = Path(__file__).resolve().parents[2] / "stages"


@pytest.fixture()
def train_helpers(monkeypatch):
    monkeypatch.syspath_prepend(str(STAGES))
    sys.modules.pop("_train", None)
    import _train

    yield _train
    sys.modules.pop("_train", None)


def test_sources_digest_follows_content_and_names(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "a.py").write_text("x = 1\n")
    (root / "sub" / "b.py").write_text("y = 2\n")
    (root / "notes.txt").write_text("ignored")
    first = sources_digest(root)
    assert sources_digest(root) == first
    (root / "notes.txt").write_text("still ignored")
    assert sources_digest(root) == first
    (root / "sub" / "b.py").write_text("y = 3\n")  # a loss fix
    changed = sources_digest(root)
    assert changed != first
    (root / "sub" / "b.py").rename(root / "c.py")  # same bytes, another module
    assert sources_digest(root) not in (first, changed)


def test_resume_key_changes_with_the_code(train_helpers, tmp_path, monkeypatch):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"student": {"variant": "tiny"}, "finetune_saco": {}}))
    index = tmp_path / "index.json"
    index.write_text("{}")
    monkeypatch.setattr(train_helpers, "init_distributed", DistInfo)
    key = train_helpers.setup(str(params), "finetune_saco", [str(index)])[2]
    assert train_helpers.setup(str(params), "finetune_saco", [str(index)])[2] == key
    monkeypatch.setattr(train_helpers, "code_fingerprint", lambda: "another version of the code")
    assert train_helpers.setup(str(params), "finetune_saco", [str(index)])[2] != key
    index.write_text('{"other": 1}')
    monkeypatch.undo()
    monkeypatch.setattr(train_helpers, "init_distributed", DistInfo)
    assert train_helpers.setup(str(params), "finetune_saco", [str(index)])[2] != key
