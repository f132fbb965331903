"""Stage `evaluate@<model>`: score one model (teacher, student checkpoint or .pte) on the val split."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from _common import load, parser, run, stage_name
from _tracking import start_stage_run, tracking_params

import sam3_edge
from sam3_edge.config import params_hash
from sam3_edge.eval.driver import evaluate_predictor
from sam3_edge.predictors import PredictorUnavailable, fingerprint, load_predictor, parse_spec
from sam3_edge.utils import LOG, write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="model name (foreach key): metrics 'model' and predictions name")
    p.add_argument("--spec", required=True, help="teacher:<dir> | student:<checkpoint> | pte:<file>")
    p.add_argument("--concept-index", required=True, help="data/index/concepts_val.json (SA-Co pairs)")
    p.add_argument("--image-index", help="data/index/images_val.json (SA-1B, point/box prompts)")
    p.add_argument("--video-index", help="data/index/videos_val.json (SA-V, J&F)")
    p.add_argument("--metrics", required=True, help="out: metrics/eval/<model>.json")
    p.add_argument("--predictions", required=True, help="out: folder of COCO results json")
    p.add_argument(
        "--scope", default="full", choices=["full", "intermediate"], help="intermediate: evaluate.intermediate subset"
    )
    args = p.parse_args()
    params = load(args.params, "evaluate").scoped(args.scope)
    torch.set_num_threads(params.num_threads)
    try:
        predictor = load_predictor(args.spec, name=args.model)
    except PredictorUnavailable as err:  # e.g. a Core ML .pte on Linux: record the skip, keep the pipeline going
        LOG.warning("evaluate@%s skipped: %s", args.model, err)
        Path(args.predictions).mkdir(parents=True, exist_ok=True)
        write_json(args.metrics, {"model": args.model, "status": "skipped", "reason": str(err)})
        return
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"evaluate@{args.model}: cannot load the model: {err}")
    # a killed run resumes from <predictions>/.partial when model, params, data and code are all unchanged
    inputs = [parse_spec(args.spec)[1], args.concept_index, args.image_index, args.video_index]
    inputs.append(Path(sam3_edge.__file__).parent)
    key = params_hash({"spec": args.spec, "params": params, "inputs": fingerprint([i for i in inputs if i])})
    partial = Path(args.predictions) / ".partial"
    metrics = evaluate_predictor(
        predictor,
        concept_index=args.concept_index,
        image_index=args.image_index,
        video_index=args.video_index,
        params=params,
        predictions_dir=args.predictions,
        resume_dir=partial,
        resume_key=key,
    )
    metrics["model"] = args.model
    metrics["scope"] = args.scope
    write_json(args.metrics, metrics)
    tracked = start_stage_run(tracking_params(args.params), stage_name(), {"evaluate": params, "spec": args.spec})
    tracked.end(args.metrics)  # one MLflow run per evaluation: its params, final metrics and metrics JSON
    shutil.rmtree(partial, ignore_errors=True)
    LOG.info(
        "evaluate@%s: mIoU %s, presence F1 %s, cgF1 %s, sensitivity %s",
        args.model,
        metrics["miou"],
        metrics["presence"]["f1"],
        metrics["saco"]["cgF1"],
        metrics["prompt_sensitivity"]["value"],
    )


if __name__ == "__main__":
    run(main)
