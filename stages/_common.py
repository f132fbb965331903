"""What every stage entrypoint shares: argument parsing, params loading, logging, metrics writing."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Stages run as `python stages/x.py` from the repo root; make the src/ layout importable without install too.
_SRC = Path(__file__).resolve().parents[1] / "src"
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from sam3_edge.config import ParamsError  # noqa: E402
from sam3_edge.params import load_section  # noqa: E402
from sam3_edge.utils import setup_logging  # noqa: E402


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (profile); default params.yaml")
    return p


def load(params_file: str, section: str):
    """Load one params section strictly; an invalid value ends the stage before any work, naming the key."""
    setup_logging(os.environ.get("SAM3_EDGE_LOG", "INFO"))
    try:
        return load_section(params_file, section)
    except ParamsError as err:
        sys.exit(f"invalid params: {err}")
