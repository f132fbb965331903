"""Where a model's text-prompt mIoU goes: mask quality or which queries it keeps.

    python scripts/text_gap.py teacher student [--index data/index/concepts_val.json] [--out metrics/text_gap.json]

Reads ``predictions/<model>/text.json`` (every query's mask and score, written by the evaluate stage) and the GT
of the concept index. Per GT instance of the positive pairs:

- ``miou``: the metric (kept = score >= 0.5, Hungarian-matched, unmatched GT = 0; ``core.metrics``);
- ``oracle_miou``: the best IoU any of the model's queries reaches, kept or not (the mask quality bound);
- ``unmatched``: share of GT the metric scores 0, and ``unmatched_with_good_query`` the share of those where some
  query has IoU > 0.5 (a mask the model made but did not keep);
- per pair: predictions kept on positive and on negative pairs (GT instances per positive pair beside them).

It also prints the metric at lower score thresholds, for reading only: the text mIoU does not charge false
positives, so a lower threshold raises it for any model (cgF1 is the figure that charges them).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils

from sam3_edge.core.metrics import mask_iou_matrix, matched_instance_ious
from sam3_edge.utils import write_json

THRESHOLDS = (0.3, 0.4, 0.5)


def model_gap(model: str, records: list[dict], root: Path) -> dict:
    preds: dict[int, list[dict]] = defaultdict(list)
    for p in json.loads((root / "predictions" / model / "text.json").read_text()):
        preds[p["image_id"]].append(p)
    metric, oracle, pos_kept, neg_kept, gts = [], [], [], [], []
    sweep: dict[float, list[float]] = {t: [] for t in THRESHOLDS}
    for r in records:
        ps = preds.get(r["pair_id"], [])
        scores = np.array([p["score"] for p in ps])
        if not r["instances"]:
            neg_kept.append(int((scores >= 0.5).sum()))
            continue
        gt = np.stack([mask_utils.decode(i["rle"]).astype(bool) for i in r["instances"]])
        masks = np.stack([mask_utils.decode(p["segmentation"]).astype(bool) for p in ps]) if ps else gt[:0]
        metric += matched_instance_ious(masks, scores, gt).tolist()
        for t in THRESHOLDS:
            sweep[t] += matched_instance_ious(masks, scores, gt, score_threshold=t).tolist()
        oracle += (mask_iou_matrix(masks, gt).max(0) if len(masks) else np.zeros(len(gt))).tolist()
        pos_kept.append(int((scores >= 0.5).sum()))
        gts.append(len(gt))
    m, o = np.array(metric), np.array(oracle)
    return {
        "gt_instances": len(m),
        "miou": float(m.mean()),
        "oracle_miou": float(o.mean()),
        "matched_mean_iou": float(m[m > 0].mean()),
        "unmatched": float((m == 0).mean()),
        "unmatched_with_good_query": float(((m == 0) & (o > 0.5)).mean()),
        "kept_per_positive_pair": float(np.mean(pos_kept)),
        "gt_per_positive_pair": float(np.mean(gts)),
        "positive_pairs_with_none_kept": float(np.mean(np.array(pos_kept) == 0)),
        "kept_per_negative_pair": float(np.mean(neg_kept)) if neg_kept else None,
        "miou_at_threshold": {str(t): float(np.mean(v)) for t, v in sweep.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="names under predictions/ (evaluated models)")
    p.add_argument("--index", default="data/index/concepts_val.json")
    p.add_argument("--root", type=Path, default=Path("."))
    p.add_argument("--out", help="write the figures as json here")
    args = p.parse_args()
    records = json.loads((args.root / args.index).read_text())["records"]
    result = {m: model_gap(m, records, args.root) for m in args.models}
    print(json.dumps(result, indent=1))
    if args.out:
        write_json(args.out, {"index": args.index, "models": result, "command": "python scripts/text_gap.py ..."})


if __name__ == "__main__":
    main()
