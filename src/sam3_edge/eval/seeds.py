"""The student's robustness across init seeds (``metrics/student_seeds.json``): per seed, the student / teacher
ratios of the quality bars (issue 20's image figures, issue 23's video J&F), and their mean and spread. Pure: dicts of evaluate-stage metrics in, a dict out.
"""

from __future__ import annotations

import statistics
from typing import Any

from sam3_edge.eval.gates import lookup

# figure -> dotted key in an evaluate-stage metrics json
FIGURES = {
    "text_miou": "miou.text",
    "point_miou": "miou.point",
    "box_miou": "miou.box",
    "presence_f1": "presence.f1",
    "prompt_sensitivity": "prompt_sensitivity.value",
    "cgF1": "saco.cgF1",
    "video_j_and_f": "video.J_and_F",  # the student's own video path (memory) against the teacher's reference
}
# the bar per figure: ("ratio", r) = student >= r x teacher; ("abs", v) = student >= v
BAR = {
    "text_miou": ("ratio", 0.85),
    "point_miou": ("ratio", 0.85),
    "box_miou": ("ratio", 0.85),
    "presence_f1": ("abs", 0.85),
    "prompt_sensitivity": ("ratio", 0.8),
    "cgF1": ("ratio", 0.7),
    "video_j_and_f": ("ratio", 0.85),
}


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.fmean(values), 4),
        "std": round(statistics.pstdev(values), 4) if len(values) > 1 else 0.0,
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def summarize_seeds(per_seed: dict[int, dict], teacher: dict) -> dict[str, Any]:
    """per_seed: init seed -> the student's evaluate metrics; teacher: the teacher's. Figures a metrics file
    lacks are reported as missing, never as 0."""
    seeds: dict[str, Any] = {}
    for seed, metrics in sorted(per_seed.items()):
        row: dict[str, Any] = {"figures": {}, "ratios": {}, "bar": {}, "missing": []}
        for name, key in FIGURES.items():
            value, reason = lookup(metrics, key)
            ref, ref_reason = lookup(teacher, key)
            if value is None:
                row["missing"].append(f"{name}: {reason}")
                continue
            row["figures"][name] = round(value, 4)
            if ref:
                row["ratios"][name] = round(value / ref, 4)
            kind, level = BAR[name]
            if kind == "abs":
                row["bar"][name] = {"value": round(value, 4), "needs": level, "met": value >= level}
            elif ref:
                row["bar"][name] = {"ratio": round(value / ref, 4), "needs": level, "met": value / ref >= level}
            else:
                row["missing"].append(f"{name} ratio: teacher {ref_reason or 'figure is 0'}")
        row["bar_met"] = bool(row["bar"]) and all(b["met"] for b in row["bar"].values()) and not row["missing"]
        seeds[str(seed)] = row
    summary: dict[str, Any] = {"figures": {}, "ratios": {}}
    for part in ("figures", "ratios"):
        for name in FIGURES:
            values = [r[part][name] for r in seeds.values() if name in r[part]]
            if values:
                summary[part][name] = _spread(values)
    return {
        "seeds": seeds,
        "summary": summary,
        "teacher": {name: lookup(teacher, key)[0] for name, key in FIGURES.items()},
        "all_seeds_meet_bar": bool(seeds) and all(r["bar_met"] for r in seeds.values()),
    }
