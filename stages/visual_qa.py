"""Stage `visual_qa`: a self-contained HTML gallery of val prompts through teacher | student | quantized."""

from __future__ import annotations

import torch
from _common import load, parser, run

from sam3_edge.predictors import parse_spec
from sam3_edge.report.gallery_html import build_gallery
from sam3_edge.report.predict import load_spec
from sam3_edge.report.render import write_text
from sam3_edge.types import Predictor
from sam3_edge.utils import LOG, write_json


def column(name: str, spec: str | None, stage: str) -> Predictor | str:
    """The column's predictor, or why it is missing (never a substitute model)."""
    if not spec:
        return f"missing (no --{name} model given)"
    _kind, path = parse_spec(spec)
    if not path.exists():
        return f"missing (stage {stage} not run: {path} absent)"
    try:
        return load_spec(spec, name=name)
    except (RuntimeError, NotImplementedError, ValueError, OSError) as err:
        LOG.warning("visual_qa: %s column not loaded: %s", name, err)
        return f"not loaded: {err}"


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--concept-index", required=True, help="data/index/concepts_val.json")
    p.add_argument("--teacher", help="model spec, e.g. teacher:models/teacher")
    p.add_argument("--student", help="model spec, e.g. student:models/student/student.safetensors")
    p.add_argument("--quantized", help="model spec, e.g. pte:exports/xnnpack/student_int8")
    p.add_argument("--out", required=True, help="out: reports/visual_qa/index.html")
    p.add_argument("--metrics", required=True, help="out: metrics/visual_qa.json (gallery summary)")
    args = p.parse_args()
    params = load(args.params, "visual_qa")
    torch.set_num_threads(params.num_threads)
    stages = {"teacher": "teacher", "student": "student", "quantized": "export"}
    predictors = {name: column(name, getattr(args, name), stages[name]) for name in params.columns}
    html, summary = build_gallery(args.concept_index, predictors, params)
    write_text(args.out, html)
    write_json(args.metrics, summary)
    LOG.info("visual_qa: %d tiles -> %s; %s", summary["tiles"], args.out, summary["columns"])


if __name__ == "__main__":
    run(main)
