"""`sam3-edge data ...` subcommands (the data helper fills in `validate`)."""

from __future__ import annotations

import argparse


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="dataset tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    validate = data_sub.add_parser("validate", help="check a dataset folder or tar; exit 1 if any file is bad")
    validate.add_argument("format", choices=["sa1b", "sav", "saco"])
    validate.add_argument("path")
    validate.set_defaults(func=lambda args: NotImplementedError)
