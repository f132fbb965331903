"""Stage `data`: synthetic data in the public layouts (or the real folders), validated and indexed."""

from __future__ import annotations

import sys

from _common import load, parser, run

from sam3_edge.data.errors import DataError
from sam3_edge.data.index import DataConfigError
from sam3_edge.data.prepare import prepare_data
from sam3_edge.utils import LOG, write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--synthetic-dir", required=True, help="out: synthetic SA-1B / SA-V / SA-Co folders")
    p.add_argument("--index-dir", required=True, help="out: data/index/{concepts,images,videos}_<split>.json")
    p.add_argument("--extract-dir", required=True, help="where SA-1B tar shards are extracted (real profile)")
    p.add_argument("--metrics", required=True, help="out: metrics json")
    args = p.parse_args()
    params = load(args.params, "data")
    try:
        metrics = prepare_data(
            params, synthetic_dir=args.synthetic_dir, index_dir=args.index_dir, extract_dir=args.extract_dir
        )
    except (DataConfigError, DataError) as err:
        sys.exit(f"data stage failed: {err}")
    write_json(args.metrics, metrics)
    LOG.info("data: %s", {k: metrics[k] for k in ("sa1b", "saco", "sav", "skipped")})


if __name__ == "__main__":
    run(main)
