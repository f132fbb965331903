"""Reading figures out of metrics JSON for the report: every cell is a number found in a file, or says why not.

A :class:`Cell` holds a number (or a short string such as a backend name) or, when the figure is not there, a
``note`` that the report prints instead: ``missing (stage evaluate@student not run)`` for an absent file,
``missing key miou.text in metrics/eval/student.json`` for an absent key, ``undefined: <reason>`` for a metric
the writer declared undefined (``{"status": "undefined", "reason": ...}``), ``skipped: <reason>`` likewise.
Nothing here invents a value: no default, no zero for a missing figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sam3_edge.utils import LOG


@dataclass(frozen=True)
class Cell:
    """One table cell: ``value`` (number, bool or string) or ``None`` with the ``note`` saying why."""

    value: float | int | bool | str | None
    note: str = ""
    unit: str = ""

    @property
    def present(self) -> bool:
        return self.value is not None

    def number(self) -> float | None:
        v = self.value
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def text(self, digits: int = 3) -> str:
        v = self.value
        if v is None:
            return self.note or "missing"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, int):
            return f"{v}{self.unit}"
        if isinstance(v, float):
            return f"{v:.{digits}f}{self.unit}"
        return str(v)


def missing_file(stage: str) -> Cell:
    return Cell(None, f"missing (stage {stage} not run)")


@dataclass(frozen=True)
class MetricsFile:
    """A metrics JSON file as read for the report: ``data`` is ``None`` when absent or unreadable (``problem``)."""

    path: Path
    stage: str  # the stage that writes it, for "missing (stage X not run)"
    data: Any = None
    problem: str = ""

    @classmethod
    def read(cls, path: str | Path, *, stage: str) -> MetricsFile:
        path = Path(path)
        if not path.exists():
            return cls(path, stage, None, f"missing (stage {stage} not run)")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            LOG.warning("report: %s is not valid json: %s", path, err)
            return cls(path, stage, None, f"unreadable ({path.name}: not valid json)")
        return cls(path, stage, data)

    @property
    def exists(self) -> bool:
        return self.data is not None

    def raw(self, key: str) -> tuple[bool, Any]:
        """(found, value) for a dotted key path; a list index is a decimal component."""
        node = self.data
        for part in key.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return False, None
        return True, node

    def cell(self, *keys: str, unit: str = "", scale: float = 1.0) -> Cell:
        """The first of ``keys`` present in the file, as a cell (a dict value is read at its ``value`` key)."""
        if not self.exists:
            return Cell(None, self.problem)
        for key in keys:
            found, value = self.raw(key)
            if found:
                return to_cell(value, unit=unit, scale=scale, where=f"{key} in {self.path}")
        for key in keys:  # a parent recorded as skipped/undefined explains the absent figure
            parts = key.split(".")
            for depth in range(len(parts) - 1, 0, -1):
                found, value = self.raw(".".join(parts[:depth]))
                if (
                    found
                    and isinstance(value, dict)
                    and value.get("status") not in (None, "ok")
                    and parts[depth] not in value
                ):
                    return to_cell({"status": value["status"], "reason": value.get("reason", "")})
        return Cell(None, f"missing key {keys[0]} in {self.path.name}")


def to_cell(value: Any, *, unit: str = "", scale: float = 1.0, where: str = "") -> Cell:
    """A json value as a cell: numbers (scaled), bools and strings as such, status/reason dicts as notes."""
    if isinstance(value, bool) or isinstance(value, str):
        return Cell(value, unit=unit)
    if isinstance(value, (int, float)):
        if scale != 1.0:
            return Cell(float(value) * scale, unit=unit)
        return Cell(value, unit=unit)
    if isinstance(value, dict):
        if "value" in value and not isinstance(value["value"], dict):
            if value["value"] is None:
                return Cell(None, f"undefined: {value.get('reason', 'no reason given')}")
            return to_cell(value["value"], unit=unit, scale=scale, where=where)
        if "status" in value:
            reason = value.get("reason", "")
            return Cell(None, f"{value['status']}: {reason}" if reason else str(value["status"]))
    if value is None:
        return Cell(None, "undefined (null)")
    return Cell(None, f"not a number ({where})")


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Leaves of a json tree as (dotted key, value); a status/reason dict is one leaf."""
    if isinstance(data, dict):
        if "status" in data and set(data) <= {"status", "reason"}:
            return [(prefix, data)]
        out: list[tuple[str, Any]] = []
        for k, v in data.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(data, list):
        if all(not isinstance(v, (dict, list)) for v in data) and len(data) <= 8:
            return [(prefix, data)]
        return [(prefix, f"[{len(data)} items]")]
    return [(prefix, data)]


def human_bytes(n: float) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
