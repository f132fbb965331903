"""Fixtures of the deploy tests: the stand-in programs, quantized once per session (recipes are the slow part)."""

from __future__ import annotations

import pytest

from tests.support.deploy_standin import standin_programs


@pytest.fixture(scope="session")
def standin():
    """(programs, calibration inputs) of the small stand-in model (do not mutate the modules)."""
    return standin_programs()


@pytest.fixture(scope="session")
def standin_variants(standin):
    """variant -> (ExportedPrograms, recipe report) for fp32, fp16, int8 and 8da4w."""
    from sam3_edge.deploy.quantize import build_variant

    programs, calibration = standin
    return {v: build_variant(v, programs, calibration, group_size=32) for v in ("fp32", "fp16", "int8", "8da4w")}
