"""Shared fixtures. Tests run on CPU, offline, with tiny configs."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("SAM3_EDGE_QUIET", "1")
# stage subprocesses skip MLflow (a fresh sqlite store costs seconds of schema migration per test folder); the
# tests that check the tracking (test_every_student_stage_runs, test_evaluate_and_gates_stages_smoke) turn it on
os.environ.setdefault("SAM3_EDGE_NO_MLFLOW", "1")

# Under pytest-xdist (`-n 2`, pyproject) each worker and the stage subprocesses it starts get one CPU thread: two
# workers with two OpenMP threads each on 2 cores spin against each other and run many times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)
