"""Metrics json of the deploy stages: numbers (and booleans) only, plus ``status``/``reason`` strings."""

from __future__ import annotations

from typing import Any

_KEPT_STRINGS = {
    "status",
    "reason",
    "model",
    "variant",
    "backend",
    "recipe",
    "not_executed_reason",
    "coreml_deployment_target",
    "calibration",
    "partition_mode",
}


def stage_metrics(meta: dict[str, Any]) -> dict[str, Any]:
    """Keep numeric leaves and the named strings; drop configs, paths and lists (they live in ``meta.json``)."""

    def keep(tree: Any, key: str = "") -> Any:
        if isinstance(tree, dict):
            out = {k: keep(v, k) for k, v in tree.items() if k != "model_config"}
            return {k: v for k, v in out.items() if v is not None and v != {}}
        if isinstance(tree, bool) or isinstance(tree, (int, float)):
            return tree
        if isinstance(tree, str) and key in _KEPT_STRINGS:
            return tree
        return None

    return keep(meta)
