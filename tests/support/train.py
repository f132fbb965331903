"""Run a training entry point (``distill_phase1`` ... ``qat``) on a fresh tiny student, as the tests do."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def train_tiny(
    entry,
    data: Any,
    params: Any,
    out_dir: Path,
    *,
    seed: int = 0,
    params_hash: str | None = None,
    init_from: Path | None = None,
    stop_after: int | None = None,
    **kw,
) -> dict[str, Any]:
    """``entry(tiny student of init seed ``seed``, data, params, TrainRun)`` writing to ``out_dir``; the params hash
    is the folder's name unless ``params_hash`` is given; ``kw`` go to the entry point (``phrase_cache``)."""
    from sam3_edge.models import build_student
    from sam3_edge.train.loop import TrainRun

    run = TrainRun(out_dir, params_hash or out_dir.name, init_from=init_from, stop_after=stop_after)
    return entry(build_student("tiny", seed=seed), data, params, run, **kw)


def save_student(path: Path, model: Any = None, *, step: int = 0) -> Path:
    """A student checkpoint at ``path`` (``model``, or an untrained tiny student of init seed 0), as a stage writes
    one; returns ``path``."""
    from sam3_edge.core.checkpoint import save_checkpoint
    from sam3_edge.models import build_student

    model = model if model is not None else build_student("tiny", seed=0)
    config = model.config.to_json()
    save_checkpoint(path, model=model, model_config=config, step=step, epoch=0, params_hash="test", stage="test")
    return path
