"""``load_predictor(spec)``: the one composition of a model spec into a :class:`~sam3_edge.types.Predictor`.

Spec strings (written in dvc.yaml's ``evaluate`` foreach): ``teacher:<dir>`` (a teacher directory of the
`teacher` stage, or a facebook/sam3 folder), ``student:<checkpoint>`` (a student checkpoint), ``pte:<dir or file>``
(an export directory with ``text.pte`` + ``image.pte`` + ``meta.json``, run by
``sam3_edge.deploy.runtime.PtePredictor``).
It sits above teacher, models, deploy and eval, so the evaluation driver never imports a model package. Each kind
imports its package only when asked for, so evaluating the student never imports transformers' Sam3Model.
"""

from __future__ import annotations

from pathlib import Path

from sam3_edge.types import Predictor

KINDS = ("teacher", "student", "pte")


class PredictorUnavailable(RuntimeError):
    """The model exists but cannot run on this host (e.g. a Core ML or QNN .pte): a recorded skip, not a crash."""


def parse_spec(spec: str) -> tuple[str, Path]:
    """``"kind:path"`` -> (kind, path); errors name the spec."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in KINDS or not path:
        raise ValueError(f"model spec {spec!r}: expected '<kind>:<path>' with kind one of {list(KINDS)}")
    return kind, Path(path)


def load_predictor(spec: str, *, name: str | None = None, device: str = "cpu") -> Predictor:
    """Build the predictor of ``spec``; ``name`` (the foreach key) replaces its ``name`` when given."""
    kind, path = parse_spec(spec)
    if not path.exists():
        raise FileNotFoundError(f"model spec {spec!r}: {path} does not exist")
    predictor: Predictor
    if kind == "teacher":
        from sam3_edge.teacher.load import load_teacher

        predictor = load_teacher(path, device=device)
    elif kind == "student":
        from sam3_edge.models import StudentPredictor, load_student

        model, _meta = load_student(path, device=device)
        predictor = StudentPredictor(model, name=name or path.stem, device=device)
    else:
        from sam3_edge.deploy.runtime import META_NAME, PtePredictor, backend_runnable, resolve_export
        from sam3_edge.utils import read_json

        meta_file = (path if path.is_dir() else path.parent) / META_NAME
        if meta_file.is_file() and read_json(meta_file).get("status") != "ok":  # the export stage recorded a skip
            meta = read_json(meta_file)
            raise PredictorUnavailable(f"model spec {spec!r}: export {meta.get('status')!r}: {meta.get('reason', '')}")
        _pte, meta = resolve_export(path)
        ok, why = backend_runnable(meta["backend"])
        if not ok:
            raise PredictorUnavailable(f"model spec {spec!r}: {why}")
        predictor = PtePredictor(path, name=name)
    if name:
        predictor.name = name
    return predictor


def fingerprint(paths: list[str | Path]) -> str:
    """sha256 over the contents of files and (recursively) directories, for resume keys; missing paths count too."""
    import hashlib

    from sam3_edge.utils import sha256_file

    digest = hashlib.sha256()
    for root in map(Path, paths):
        files = (
            sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if root.is_dir()
            else [root]
        )
        for f in files:
            digest.update(f"{f}:{sha256_file(f) if f.is_file() else 'missing'}\n".encode())
    return digest.hexdigest()
