"""Session fixtures of the reliability tests: tiny data, an untrained tiny teacher, a built cache, a stand-in
quantized program folder. All read-only: tests copy what they modify."""

from __future__ import annotations

import pytest

from tests.support.data import TEACHER_DATA, make_data
from tests.support.reliability import CACHE_SECTION
from tests.support.teacher import make_teacher_dir


@pytest.fixture(scope="session")
def rel_inputs(tmp_path_factory):
    """(index_dir, teacher_dir) of the teacher tests' tiny dataset (8 train images) and untrained teacher."""
    root = tmp_path_factory.mktemp("rel_inputs")
    index_dir = make_data(root, TEACHER_DATA)
    return index_dir, make_teacher_dir(index_dir, root / "teacher")


@pytest.fixture(scope="session")
def rel_cache(rel_inputs, tmp_path_factory):
    """A complete teacher cache (8 one-image shards) built in-process with CACHE_SECTION."""
    from sam3_edge.cache.config import CacheParams
    from sam3_edge.cache.run import cache_teacher
    from sam3_edge.config import from_dict

    index_dir, teacher_dir = rel_inputs
    out = tmp_path_factory.mktemp("rel_cache") / "train"
    cache_teacher(
        "image",
        teacher_dir=teacher_dir,
        index_file=index_dir / "concepts_train.json",
        out_dir=out,
        params=from_dict(CacheParams, CACHE_SECTION),
    )
    return out


@pytest.fixture(scope="session")
def standin_quantized(tmp_path_factory):
    """A quantize-stage folder (fp32 programs + inputs + meta.json) of the deploy tests' small stand-in model."""
    from sam3_edge.deploy.inputs import save_inputs
    from sam3_edge.deploy.pipeline import INPUTS_NAME
    from sam3_edge.deploy.quantize import build_variant, save_programs
    from tests.support.deploy_standin import standin_programs

    programs, calibration = standin_programs()
    eps, recipe = build_variant("fp32", programs, calibration)
    folder = tmp_path_factory.mktemp("rel_quantized") / "fp32"
    folder.mkdir()
    save_inputs(folder / INPUTS_NAME, calibration)
    save_programs(
        folder, eps, {"status": "ok", "model": "standin", "variant": "fp32", "model_config": {}, "recipe": recipe}
    )
    return folder
