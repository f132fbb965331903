"""The two teacher stages' calls.

- ``fit_teacher`` (stage `teacher_fit`, frozen in dvc.yaml): fit the bootstrap teacher (a tiny ``Sam3Model``) on
  the synthetic train split. Its output directory is the teacher the project ships in git (``teachers/bootstrap``).
- ``prepare_teacher`` (stage `teacher`): the embedded profile's teacher is *given*, as facebook/sam3 is in the real
  profile: check the shipped directory against the params in force (weights digest, architecture and fit params),
  load it, run one prompt through it, and install it as ``models/teacher``. The real profile checks and points at
  the facebook/sam3 weights. Neither evaluates: the `evaluate@teacher` stage scores every teacher, with the one
  evaluation driver.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from sam3_edge.config import to_dict
from sam3_edge.teacher.config import TeacherParams
from sam3_edge.teacher.load import _load_sam3, load_teacher, read_teacher_meta, weights_digest, write_teacher_meta
from sam3_edge.teacher.train import train_bootstrap
from sam3_edge.types import Prompt

# teacher params the weights depend on; ``eval`` (the fit's own val check) and ``source`` do not change them
FIT_KEYS = ("image_size", "fpn_levels", "point_box_size", "seed", "model", "train")
REFIT_HOWTO = "refit it with `make teacher-fit` (README: the bootstrap teacher) or restore those params"


def _real_teacher_id(source: str) -> str:
    """``sam3:<source>@<digest>`` from the config and the weight file names + sizes (no 3 GB hash)."""
    _, _, directory = _load_sam3(source, local_only=True)
    digest = hashlib.sha256((directory / "config.json").read_bytes())
    for f in sorted(directory.glob("*.safetensors")):
        digest.update(f"{f.name}:{f.stat().st_size}".encode())
    return f"sam3:{source}@{digest.hexdigest()[:16]}"


def fit_teacher(params: TeacherParams, *, train_index: str | Path, val_index: str | Path, out_dir: str | Path) -> dict:
    """Fit the bootstrap teacher into ``out_dir``; returns the fit's record (training figures + val check)."""
    if params.source != "bootstrap":
        raise ValueError(
            f"teacher.source={params.source!r}: facebook/sam3 is given, not fitted (teacher_fit fits only the "
            "bootstrap teacher of the embedded profile)"
        )
    return {
        "source": "bootstrap",
        **train_bootstrap(params, train_index=train_index, val_index=val_index, out_dir=out_dir),
    }


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


def check_shipped_teacher(shipped: str | Path, params: TeacherParams) -> dict:
    """Raise ``ValueError`` naming the file when ``shipped`` is not a bootstrap teacher fitted with ``params``."""
    shipped = Path(shipped)
    meta = read_teacher_meta(shipped)  # missing / corrupt teacher.json: ValueError naming it
    if meta.get("kind") != "bootstrap":
        raise ValueError(f"{shipped / 'teacher.json'}: kind {meta.get('kind')!r}, expected 'bootstrap'")
    if not (shipped / "model.safetensors").is_file():
        raise ValueError(f"{shipped / 'model.safetensors'}: missing ({REFIT_HOWTO})")
    digest = weights_digest(shipped)
    if meta.get("teacher_id") != f"bootstrap-sam3-tiny@{digest}":
        raise ValueError(
            f"{shipped / 'model.safetensors'}: weights digest {digest} does not match teacher.json's teacher_id "
            f"{meta.get('teacher_id')!r} (the file was changed after the fit)"
        )
    fitted, current = json.loads(_canonical(meta.get("params", {}))), json.loads(_canonical(to_dict(params)))
    differ = [k for k in FIT_KEYS if _canonical(fitted.get(k)) != _canonical(current.get(k))]
    if differ:
        detail = "; ".join(f"teacher.{k}: fitted {fitted.get(k)!r}, params {current.get(k)!r}" for k in differ)
        raise ValueError(
            f"{shipped / 'teacher.json'}: the shipped teacher was fitted with other params ({detail}): {REFIT_HOWTO}"
        )
    return meta


@torch.inference_mode()
def _smoke(adapter, phrase: str) -> dict:
    """One image, one text prompt: every output finite, with the expected shapes."""
    side = adapter.image_size
    image = torch.linspace(0, 1, 3 * side * side).reshape(1, 3, side, side)
    pred = adapter.predict(image, [Prompt(kind="text", text=phrase)])
    for name in ("mask_logits", "boxes", "scores", "presence"):
        value = getattr(pred, name)
        if not torch.isfinite(value).all():
            raise ValueError(f"teacher smoke check: non-finite {name} for the prompt {phrase!r}")
    return {"queries": int(pred.scores.shape[1]), "mask_side": int(pred.mask_logits.shape[-1])}


def _install(shipped: Path, out: Path) -> None:
    """Copy ``shipped`` onto ``out`` through a scratch folder beside it: a kill leaves the old ``out`` or none."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.tmp-") as scratch:
        staged = Path(scratch) / "teacher"
        shutil.copytree(shipped, staged, ignore=shutil.ignore_patterns(".resume", ".*.tmp"))
        if out.exists():
            shutil.rmtree(out)
        os.replace(staged, out)


def prepare_teacher(params: TeacherParams, *, shipped_dir: str | Path, out_dir: str | Path) -> dict:
    """Check, load and install the given teacher as ``out_dir``; returns ``metrics/teacher.json`` (identity and
    checks only: the quality figures are ``metrics/eval/teacher.json``, from the evaluation driver)."""
    start = time.perf_counter()
    if params.source == "bootstrap":
        meta = check_shipped_teacher(shipped_dir, params)
        adapter = load_teacher(shipped_dir)
        phrase = next((w for w in sorted(adapter.tokenizer.get_vocab()) if w.isalpha()), "object")  # a known word
        smoke = _smoke(adapter, phrase)
        _install(Path(shipped_dir), Path(out_dir))
        identity = {"source": "bootstrap", "shipped": str(shipped_dir), "teacher_id": meta["teacher_id"]}
    else:
        adapter = load_teacher(
            params.source,
            fpn_levels=params.fpn_levels,
            point_box_size=params.point_box_size,
            image_size=params.image_size,
        )
        smoke = _smoke(adapter, "object")
        teacher_id = _real_teacher_id(params.source)
        write_teacher_meta(
            out_dir,
            {
                "kind": "sam3",
                "source": params.source,
                "teacher_id": teacher_id,
                "image_size": params.image_size,
                "fpn_levels": list(params.fpn_levels),
                "point_box_size": params.point_box_size,
                "params": to_dict(params),
            },
        )
        identity = {"source": params.source, "teacher_id": teacher_id}
    return {
        **identity,
        "params_m": round(sum(p.numel() for p in adapter.model.parameters()) / 1e6, 3),
        "image_size": adapter.image_size,
        "smoke": smoke,
        "check_s": round(time.perf_counter() - start, 2),
        "quality": "metrics/eval/teacher.json (stage evaluate@teacher)",
    }
