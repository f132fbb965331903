"""The params file boundary: read ``params.yaml`` (or a profile under ``configs/``) into typed sections.

This is the one library module that touches yaml (stages and the CLI are its only callers). Each top-level
section of the file maps to one frozen dataclass registered in :data:`SECTIONS`; an unknown section, an
unknown key inside a section, a wrong type or an impossible value is a :class:`ParamsError` naming the key,
raised before any stage does work. ``sam3-edge params check FILE`` validates a whole file.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sam3_edge.config import ParamsError, from_dict

T = TypeVar("T")

# section name -> "module:Class". Each package owns its section dataclass next to the code that reads it.
SECTIONS: dict[str, str] = {
    "seed": "builtins:int",
    "data": "sam3_edge.data.config:DataParams",
    "teacher": "sam3_edge.teacher.config:TeacherParams",
    "cache": "sam3_edge.cache.config:CacheParams",
    "tracking": "sam3_edge.report.config:TrackingParams",
    "student": "sam3_edge.models.config:StudentParams",
    "distill_phase1": "sam3_edge.train.config:Phase1Params",
    "distill_phase2": "sam3_edge.train.config:Phase2Params",
    "distill_video": "sam3_edge.train.config:VideoParams",
    "finetune_saco": "sam3_edge.train.config:FinetuneParams",
    "qat": "sam3_edge.train.config:QatParams",
    "visual_qa": "sam3_edge.report.config:VisualQAParams",
    "report": "sam3_edge.report.config:ReportParams",
    "evaluate": "sam3_edge.eval.config:EvaluateParams",
    "gates": "sam3_edge.eval.config:GatesParams",
    "quantize": "sam3_edge.deploy.config:QuantizeParams",
    "export": "sam3_edge.deploy.config:ExportParams",
    "benchmark": "sam3_edge.deploy.config:BenchmarkParams",
}


def read_params_file(path: str | Path) -> dict[str, Any]:
    """Parse a params yaml file into a dict; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: not a text (utf-8 yaml) file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid yaml: {err}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at top level, got {type(data).__name__}")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ParamsError(f"{path}: unknown section(s) {unknown} (known: {sorted(SECTIONS)})")
    return data


def section_class(name: str) -> type:
    if name not in SECTIONS:
        raise ParamsError(f"unknown section {name!r} (known: {sorted(SECTIONS)})")
    module, cls = SECTIONS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def load_section(path: str | Path, name: str, cls: type[T] | None = None) -> T:
    """Load and strictly validate one section of a params file."""
    data = read_params_file(path)
    if name not in data:
        raise ParamsError(f"{path}: missing section {name!r}")
    cls = cls or section_class(name)
    if cls is int:
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{path}: {name}: expected an integer, got {value!r}")
        return value  # type: ignore[return-value]
    try:
        return from_dict(cls, data[name], prefix=name)
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}") from None


def validate_params_file(path: str | Path) -> dict[str, Any]:
    """Validate every section of a params file; returns ``{section: dataclass instance}``."""
    data = read_params_file(path)
    return {name: load_section(path, name) for name in data}
