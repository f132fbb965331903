"""Smoke tests of stages/cache.py (--kind image, --kind video), and the video cache contents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sam3_edge.cache import open_cache
from sam3_edge.cache.config import CacheParams
from sam3_edge.config import to_dict

ROOT = Path(__file__).resolve().parents[2]
PARAMS = CacheParams(
    prompts_per_image=2,
    images_per_shard=4,
    batch_size=4,
    video={"level": 1, "frame_stride": 2, "clips_per_shard": 1, "batch_size": 4},
)


def _run(stage, params_file, *args):
    env = {**os.environ, "SAM3_EDGE_QUIET": "1", "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, str(ROOT / "stages" / stage), "--params", str(params_file), *map(str, args)],
        check=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
def test_cache_stages_smoke(cache_inputs, tmp_path):
    index_dir, teacher_dir = cache_inputs
    params = tmp_path / "params.yaml"
    d = to_dict(PARAMS)
    d["video"] = {"level": 1, "frame_stride": 2, "max_frames": 0, "clips_per_shard": 1, "batch_size": 4}
    params.write_text(yaml.safe_dump({"cache": d}))
    image_args = ["--kind", "image", "--teacher", teacher_dir, "--index", index_dir / "concepts_train.json"]
    image_args += ["--out", tmp_path / "c", "--metrics", tmp_path / "m" / "cache.json"]
    _run("cache.py", params, *image_args)
    m = json.loads((tmp_path / "m" / "cache.json").read_text())
    assert m["verified"] and m["samples"] == 16 and m["total_mb"] > 0 and m["samples_per_s"] > 0
    assert open_cache(tmp_path / "c").verify() == 2
    # a second run keeps every verified shard and rebuilds nothing
    _run("cache.py", params, *image_args)
    m = json.loads((tmp_path / "m" / "cache.json").read_text())
    assert m["shards_built_rank0"] == 0 and m["shards_kept_rank0"] == 2

    _run(
        "cache.py",
        params,
        "--kind",
        "video",
        "--teacher",
        teacher_dir,
        "--index",
        index_dir / "videos_train.json",
        "--out",
        tmp_path / "v",
        "--metrics",
        tmp_path / "m" / "cache_video.json",
    )
    mv = json.loads((tmp_path / "m" / "cache_video.json").read_text())
    video = open_cache(tmp_path / "v")
    assert video.verify() == 2 and mv["clips"] == 2 and mv["frames"] == 2 * 3  # 6 frames, stride 2
    t = video.load(video.keys()[0])
    assert t["frames_fpn"].shape == (3, 32, 4, 4) and t["frames_fpn"].dtype.is_floating_point
    assert t["frame_indices"].tolist() == [0, 2, 4]
    assert mv["real_profile_estimate"]["video_cache_gb"] > 0
