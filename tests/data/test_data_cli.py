from __future__ import annotations

import shutil
import tarfile

from sam3_edge.cli import main


def test_validate_exit_codes(tiny_synthetic, tmp_path, capsys):
    out, _ = tiny_synthetic
    assert main(["data", "validate", "sa1b", str(out / "sa1b/train")]) == 0
    assert "6 checked, all valid" in capsys.readouterr().out
    assert main(["data", "validate", "sav", str(out / "sav/val")]) == 0
    assert main(["data", "validate", "saco", str(out / "saco/synthetic_val.json"), "--images", str(out / "sa1b")]) == 0
    capsys.readouterr()

    bad = tmp_path / "sa1b"
    shutil.copytree(out / "sa1b/train", bad)
    (bad / "sa_2.json").write_text("{")
    (bad / "sa_5.jpg").write_bytes(b"nope")
    assert main(["data", "validate", "sa1b", str(bad)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == [f"BAD {bad}/sa_2.json", f"BAD {bad}/sa_5.jpg"]
    assert "6 checked, 2 bad (bad_image: 1, not_json: 1)" in lines[-1]

    shard = tmp_path / "sa_000001.tar"
    with tarfile.open(shard, "w") as tar:
        tar.add(out / "sa1b/train/sa_1.jpg", arcname="sa_1.jpg")
        tar.add(out / "sa1b/train/sa_1.json", arcname="sa_1.json")
    assert main(["data", "validate", "sa1b", str(shard)]) == 0
    with tarfile.open(shard, "a") as tar:
        tar.add(out / "sa1b/train/sa_2.json", arcname="../escape.json")
    assert main(["data", "validate", "sa1b", str(shard)]) == 1
    assert "tar_parent_path" in capsys.readouterr().out
    assert not (tmp_path / "escape.json").exists()

    assert main(["data", "validate", "sav", str(tmp_path / "missing")]) == 1
    assert "missing_file" in capsys.readouterr().err
