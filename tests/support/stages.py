"""DVC stage name -> the stage script that runs it and the arguments that select it (some scripts serve several
stages: `stages/cache.py --kind`, `stages/distill.py --phase`, `stages/finetune_saco.py --section`)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SHARED_SCRIPTS: dict[str, tuple[str, list[str]]] = {
    "cache_teacher": ("cache", ["--kind", "image"]),
    "cache_teacher_video": ("cache", ["--kind", "video"]),
    "cache_phrases": ("cache", ["--kind", "phrases"]),
    "distill_phase1": ("distill", ["--phase", "1"]),
    "distill_phase2": ("distill", ["--phase", "2"]),
    "qat": ("finetune_saco", ["--section", "qat"]),
}


def stage_script(stage: str) -> tuple[Path, list[str]]:
    """(``stages/<script>.py``, selecting arguments) of a DVC stage name."""
    script, select = SHARED_SCRIPTS.get(stage, (stage, []))
    return ROOT / "stages" / f"{script}.py", list(select)
