"""Untrusted files: tar members, decompression bombs through the params limit, and .pt2 archives that would run
code in torch.export.load. (Tar extraction end to end: tests/data/test_data_bad_inputs.py::
test_tar_members_with_absolute_paths_parent_dirs_or_links_are_refused and test_unreadable_tar_is_a_data_error;
static guards on pickle / torch.load / trust_remote_code / tar filters: tests/test_security_static.py.)"""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile

import pytest

from sam3_edge.data.tar_safe import member_problem


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        (_member("/etc/passwd"), "tar_absolute_path"),
        (_member("C:/x.jpg"), "tar_absolute_path"),
        (_member("\\\\server\\x.jpg"), "tar_absolute_path"),
        (_member("a/../../x.jpg"), "tar_parent_path"),
        (_member("a\\..\\..\\x.jpg"), "tar_parent_path"),
        (_member("a/link", tarfile.SYMTYPE, "/etc"), "tar_link"),
        (_member("a/hard", tarfile.LNKTYPE, "a/x.jpg"), "tar_link"),
        (_member("a/dev", tarfile.CHRTYPE), "tar_special_file"),
        (_member("a/fifo", tarfile.FIFOTYPE), "tar_special_file"),
        (_member("sa_1/sa_1.jpg"), None),
        (_member("sa_1", tarfile.DIRTYPE), None),
    ],
    ids=lambda v: v.name if isinstance(v, tarfile.TarInfo) else str(v),
)
def test_tar_member_policy(member, problem):
    assert member_problem(member) == problem


def test_decompression_bomb_limit_comes_from_params(tmp_path):
    """`data.max_image_pixels` reaches every image read of the data stage: a limit below the synthetic images'
    size makes every image a recorded `image_too_large` skip, decided on the header before any decode."""
    from sam3_edge.data.config import DataParams
    from sam3_edge.data.prepare import prepare_data
    from sam3_edge.utils import read_json
    from tests.support.data import TEACHER_DATA

    side = TEACHER_DATA.image_size
    params = DataParams(synthetic=TEACHER_DATA, max_image_pixels=side * side - 1)
    try:
        prepare_data(params, synthetic_dir=tmp_path / "syn", index_dir=tmp_path / "index", extract_dir=tmp_path / "x")
    except ValueError as err:  # an index with no usable image is refused outright: acceptable, must say why
        assert "image_too_large" in str(err) or "max_image_pixels" in str(err), err
        return
    skipped = read_json(tmp_path / "index" / "skipped.json")
    reasons = {s["reason"] for s in (skipped if isinstance(skipped, list) else skipped.get("entries", []))}
    assert reasons == {"image_too_large"}, skipped


# ---- .pt2: torch.export.load unpickles with weights_only=False in places ----


def _evil_pt2(src, dst, marker) -> None:
    """Copy of a real .pt2 whose first weight is a pickle running `touch marker` (use_pickle in its config)."""
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    buf = io.BytesIO()
    torch.save(Evil(), buf)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        config_name = next(n for n in zin.namelist() if n.endswith("weights/model_weights_config.json"))
        config = json.loads(zin.read(config_name))
        first = next(iter(config["config"]))
        config["config"][first]["use_pickle"] = True
        target = config["config"][first]["path_name"]
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == config_name:
                data = json.dumps(config).encode()
            elif info.filename.endswith("/" + target):
                data = buf.getvalue()
            zout.writestr(info, data)


def test_pt2_guard_accepts_our_programs_and_refuses_pickled_code(standin_quantized, tmp_path):
    from sam3_edge.deploy.pt2_guard import check_pt2_archive

    for program in sorted(standin_quantized.glob("*.pt2")):
        check_pt2_archive(program)
    evil, marker = tmp_path / "image.pt2", tmp_path / "PWNED"
    _evil_pt2(standin_quantized / "image.pt2", evil, marker)
    with pytest.raises(ValueError, match=r"image\.pt2: .*weights_only=True"):
        check_pt2_archive(evil)
    assert not marker.exists()
    (tmp_path / "junk.pt2").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ValueError, match="junk.pt2"):
        check_pt2_archive(tmp_path / "junk.pt2")


def test_pt2_guard_accepts_torchao_8da4w_weights(tmp_path):
    """8da4w programs legitimately pickle torchao tensor subclasses; they load with weights_only=True."""
    import torch

    from sam3_edge.deploy.pt2_guard import check_pt2_archive
    from sam3_edge.deploy.quantize import build_variant
    from tests.support.deploy_standin import standin_programs

    programs, calibration = standin_programs()
    eps, _ = build_variant("8da4w", {"text": programs["text"]}, {"text": calibration["text"]}, group_size=32)
    torch.export.save(eps["text"], tmp_path / "text.pt2")
    check_pt2_archive(tmp_path / "text.pt2")


def test_export_stage_never_runs_code_from_a_pt2(standin_quantized, tmp_path):
    import shutil

    from sam3_edge.deploy.quantize import load_programs

    folder = tmp_path / "q"
    shutil.copytree(standin_quantized, folder)
    marker = tmp_path / "PWNED"
    _evil_pt2(standin_quantized / "image.pt2", folder / "image.pt2", marker)
    with pytest.raises(ValueError, match="image.pt2"):
        load_programs(folder)
    assert not marker.exists(), "loading the quantize stage's folder ran code from a crafted .pt2"
