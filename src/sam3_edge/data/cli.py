"""`sam3-edge data ...` subcommands."""

from __future__ import annotations

import argparse
import sys
from collections import Counter


def _validate(args: argparse.Namespace) -> int:
    from sam3_edge.data.errors import DataError
    from sam3_edge.data.validate import validate_dataset

    try:
        count, errors = validate_dataset(args.format, args.path, images=args.images, max_pixels=args.max_pixels)
    except DataError as err:
        print(f"BAD {err}", file=sys.stderr)
        print(f"{args.format} {args.path}: not checked", file=sys.stderr)
        return 1
    for err in errors:
        print(f"BAD {err}")
    reasons = ", ".join(f"{r}: {n}" for r, n in sorted(Counter(e.reason for e in errors).items()))
    status = "all valid" if not errors else f"{len(errors)} bad ({reasons})"
    print(f"{args.format} {args.path}: {count} checked, {status}")
    return 1 if errors else 0


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="dataset tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    validate = data_sub.add_parser(
        "validate", help="check a dataset folder, SA-1B tar or SA-Co json; one line per bad file; exit 1 if any"
    )
    validate.add_argument("format", choices=["sa1b", "sav", "saco"])
    validate.add_argument("path", help="sa1b: folder or sa_XXXXXX.tar; sav: folder; saco: json file or folder")
    validate.add_argument("--images", default=None, help="saco: folder that file_name is relative to")
    validate.add_argument("--max-pixels", type=int, default=100_000_000, help="decompression-bomb guard")
    validate.set_defaults(func=_validate)
