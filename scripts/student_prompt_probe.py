"""Print the prompt-path check (``sam3_edge.train.diagnostics``) of student checkpoints on val.

    python scripts/student_prompt_probe.py checkpoints/distill_phase2/final.safetensors [more.safetensors ...]

The same check runs after phase 1, phase 2 and the fine-tune and is recorded in their metrics
(``prompt_check`` in metrics/train/<stage>.json): the presence logit gap and ROC AUC between positive and
negative val pairs, the text-only presence loss, and how far the pooled prompt vectors of the val phrases spread.
"""

from __future__ import annotations

import json
import sys

from sam3_edge.core.checkpoint import load_checkpoint
from sam3_edge.models import build_student
from sam3_edge.models.config import StudentConfig
from sam3_edge.train.diagnostics import prompt_diagnostics


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for path in sys.argv[1:]:
        ckpt = load_checkpoint(path)
        student = build_student(StudentConfig.from_json(ckpt.model_config), seed=0)
        student.load_state_dict(ckpt.model_state, strict=True)
        print(json.dumps({"checkpoint": path, **prompt_diagnostics(student, "data/index/concepts_val.json")}))


if __name__ == "__main__":
    main()
