"""`sam3-edge` command line: one entry point, subcommands registered by each package."""

from __future__ import annotations

import argparse
import sys

from sam3_edge import __version__


def _params_check(args: argparse.Namespace) -> int:
    from sam3_edge.config import ParamsError
    from sam3_edge.params import validate_params_file

    try:
        sections = validate_params_file(args.file)
    except ParamsError as err:
        print(f"invalid: {err}", file=sys.stderr)
        return 1
    print(f"{args.file}: ok ({len(sections)} sections: {', '.join(sections)})")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sam3_edge.prune import human, prune

    try:
        candidates, total = prune(Path(args.root), yes=args.yes)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for cand in candidates:
        print(
            f"{'deleted' if args.yes else 'would free'} {human(cand.bytes):>10}  {cand.kind:9}  {cand.path}  ({cand.reason})"
        )
    verb = "freed" if args.yes else "would free (dry run; --yes deletes)"
    print(f"{len(candidates)} unreferenced file(s); {verb} {human(total)}")
    return 0


def _readme(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sam3_edge.report.render import update_readme_results

    try:
        changed = update_readme_results(args.readme, Path(args.results).read_text())
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.readme}: results block {'updated' if changed else 'unchanged'} from {args.results}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sam3-edge", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sam3-edge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    params = sub.add_parser("params", help="check a params file (profile)")
    params_sub = params.add_subparsers(dest="params_command", required=True)
    check = params_sub.add_parser("check", help="strictly validate every section of a params file")
    check.add_argument("file", nargs="?", default="params.yaml")
    check.set_defaults(func=_params_check)

    prune = sub.add_parser("prune", help="list (dry run) or delete artefacts the current dvc.lock no longer uses")
    prune.add_argument("--root", default=".", help="project root (default: current directory)")
    prune.add_argument("--yes", action="store_true", help="delete them (default: only list)")
    prune.set_defaults(func=_prune)

    readme = sub.add_parser("readme", help="copy the report's results block (reports/results.md) into README.md")
    readme.add_argument("--results", default="reports/results.md", help="written by the report stage")
    readme.add_argument("--readme", default="README.md", help="the file whose results markers are refreshed")
    readme.set_defaults(func=_readme)

    from sam3_edge.data.cli import add_data_commands

    add_data_commands(sub)

    from sam3_edge.report.predict import add_predict_command

    add_predict_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
