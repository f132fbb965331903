"""Every kind of bad input named in the issue: a DataError naming the file and a reason code."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import pytest

from sam3_edge.data.errors import DataError
from sam3_edge.data.io import read_image
from sam3_edge.data.sa1b import read_sa1b
from sam3_edge.data.saco import read_saco
from sam3_edge.data.sav import read_sav
from sam3_edge.data.tar_safe import extract_tar


@pytest.fixture
def copy(tiny_synthetic, tmp_path):
    out, _ = tiny_synthetic
    dst = tmp_path / "synthetic"
    shutil.copytree(out, dst)
    return dst


def _sa1b_error(folder, stem="sa_1", **kw) -> DataError:
    with pytest.raises(DataError) as err:
        read_sa1b(folder / f"{stem}.json", root=folder, max_pixels=kw.get("max_pixels", 10**8))
    assert str(folder / stem) in str(err.value)
    return err.value


def test_truncated_and_non_image_jpeg(copy):
    folder = copy / "sa1b/train"
    jpg = folder / "sa_1.jpg"
    jpg.write_bytes(jpg.read_bytes()[: len(jpg.read_bytes()) // 2])
    assert _sa1b_error(folder).reason == "bad_image"
    (folder / "sa_2.jpg").write_text("this is not an image")
    assert _sa1b_error(folder, "sa_2").reason == "bad_image"
    with pytest.raises(DataError, match="sa_2.jpg: bad_image"):
        read_image(folder / "sa_2.jpg")


def test_decompression_bomb_guard(copy):
    folder = copy / "sa1b/train"
    err = _sa1b_error(folder, max_pixels=100)
    assert err.reason == "image_too_large" and "max_image_pixels" in err.detail


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "missing_json"),
        (b"", "empty_json"),
        (b"  \n", "empty_json"),
        (b"{nope", "not_json"),
        (b"\xff\xfe\x00", "not_json"),
        (b"[1, 2]", "bad_schema"),
    ],
)
def test_json_missing_empty_or_not_json(copy, content, reason):
    path = copy / "sa1b/train/sa_1.json"
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    assert _sa1b_error(copy / "sa1b/train").reason == reason


def _edit_json(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_rle_counts_not_adding_up(copy):
    path = copy / "sa1b/train/sa_1.json"
    _edit_json(path, lambda d: d["annotations"][0]["segmentation"].update(counts="0"))
    err = _sa1b_error(copy / "sa1b/train")
    assert err.reason == "bad_rle" and "annotation 0" in err.path


def test_annotation_size_differs_from_image(copy):
    path = copy / "sa1b/train/sa_1.json"
    _edit_json(path, lambda d: d["annotations"][1]["segmentation"].update(size=[48, 96]))
    assert _sa1b_error(copy / "sa1b/train").reason == "size_mismatch"
    _edit_json(path, lambda d: d["image"].update(width=100))
    assert _sa1b_error(copy / "sa1b/train").reason == "size_mismatch"


def test_saco_bad_pairs_are_skipped_not_fatal(copy):
    ann = copy / "saco/synthetic_val.json"
    data = json.loads(ann.read_text())
    n_pairs = len(data["images"])
    positive = data["annotations"][0]["image_id"]
    data["annotations"][0]["segmentation"]["size"] = [10, 10]
    other = next(a for a in data["annotations"] if a["image_id"] != positive)
    other["segmentation"]["counts"] = "00"
    data["images"][-1]["is_instance_exhaustive"] = 0
    ann.write_text(json.dumps(data))
    pairs, errors = read_saco(ann, copy / "sa1b", root=copy, max_pixels=10**8)
    assert sorted(e.reason for e in errors) == ["bad_rle", "not_instance_exhaustive", "size_mismatch"]
    assert len(pairs) == n_pairs - 3
    assert all(str(ann) in e.path for e in errors)
    ann.write_text("")
    with pytest.raises(DataError, match="empty_json"):
        read_saco(ann, copy / "sa1b", root=copy, max_pixels=10**8)


def test_saco_pair_with_bad_image_names_the_image(copy):
    (copy / "sa1b/val/sa_1000001.jpg").write_bytes(b"\x00" * 50)
    pairs, errors = read_saco(copy / "saco/synthetic_val.json", copy / "sa1b", root=copy, max_pixels=10**8)
    assert errors and all(e.reason == "bad_image" and e.path.endswith("sa_1000001.jpg") for e in errors)
    assert all(p.image != "sa1b/val/sa_1000001.jpg" for p in pairs)


def _sav_error(folder, stem="sav_000001"):
    with pytest.raises(DataError) as err:
        read_sav(folder / f"{stem}_manual.json", folder / f"{stem}.mp4", root=folder)
    return err.value


def test_mp4_that_does_not_decode(copy):
    folder = copy / "sav/train"
    mp4 = folder / "sav_000001.mp4"
    mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    err = _sav_error(folder)
    assert err.reason == "bad_video" and err.path.endswith("sav_000001.mp4")
    mp4.unlink()
    assert _sav_error(folder).reason == "missing_file"


def test_masklet_frame_count_inconsistent_with_video(copy):
    path = copy / "sav/train/sav_000001_manual.json"
    _edit_json(path, lambda d: d["masklet"].pop())
    err = _sav_error(copy / "sav/train")
    assert err.reason == "masklet_frame_mismatch" and "9 frames" in err.detail
    _edit_json(path, lambda d: d.update(masklet=[*d["masklet"], d["masklet"][-1]], video_frame_count=10.0))
    assert _sav_error(copy / "sav/train").reason == "masklet_frame_mismatch"


def _tar_with(tmp_path, members: list[tarfile.TarInfo]) -> tarfile.TarFile:
    path = tmp_path / "sa_000000.tar"
    with tarfile.open(path, "w") as tar:
        ok = tarfile.TarInfo("sa_1.json")
        payload = b"{}"
        ok.size = len(payload)
        tar.addfile(ok, io.BytesIO(payload))
        for member in members:
            data = b"evil" if member.isfile() else None
            if data is not None:
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def test_tar_members_with_absolute_paths_parent_dirs_or_links_are_refused(tmp_path):
    absolute = tarfile.TarInfo(str(tmp_path / "outside_abs.txt"))
    parent = tarfile.TarInfo("../outside_parent.txt")
    nested_parent = tarfile.TarInfo("sub/../../outside_nested.txt")
    symlink = tarfile.TarInfo("link_to_etc")
    symlink.type, symlink.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hardlink = tarfile.TarInfo("hard")
    hardlink.type, hardlink.linkname = tarfile.LNKTYPE, "sa_1.json"
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    tar_path = _tar_with(tmp_path, [absolute, parent, nested_parent, symlink, hardlink, fifo])
    target = tmp_path / "target"
    folder, rejected = extract_tar(tar_path, target)
    reasons = sorted(e.reason for e in rejected)
    assert reasons == [
        "tar_absolute_path",
        "tar_link",
        "tar_link",
        "tar_parent_path",
        "tar_parent_path",
        "tar_special_file",
    ]
    assert all(str(tar_path) in e.path for e in rejected)
    assert not (tmp_path / "outside_abs.txt").exists() and not (tmp_path / "outside_parent.txt").exists()
    assert not list(tmp_path.glob("outside*"))
    assert sorted(p.name for p in folder.iterdir()) == ["rejected_members.json", "sa_1.json"]
    # a second call reuses the extraction and reports the same refused members
    again, rejected_again = extract_tar(tar_path, target)
    assert again == folder and sorted(e.reason for e in rejected_again) == reasons


def test_unreadable_tar_is_a_data_error(tmp_path):
    bad = tmp_path / "sa_000001.tar"
    bad.write_bytes(b"not a tar at all" * 10)
    with pytest.raises(DataError, match="bad_tar"):
        extract_tar(bad, tmp_path / "t")
    assert not list((tmp_path / "t").glob("*"))


def test_packet_count_mode_agrees_with_full_decode(tiny_synthetic, tmp_path):
    out, _ = tiny_synthetic
    folder = out / "sav/train"
    args = (folder / "sav_000001_manual.json", folder / "sav_000001.mp4")
    assert read_sav(*args, root=out, decode=False) == read_sav(*args, root=out, decode=True)
    garbage = tmp_path / "sav_000009.mp4"
    garbage.write_bytes(b"\x00" * 300)
    (tmp_path / "sav_000009_manual.json").write_bytes((folder / "sav_000001_manual.json").read_bytes())
    with pytest.raises(DataError, match="bad_video"):
        read_sav(tmp_path / "sav_000009_manual.json", garbage, root=tmp_path, decode=False)
