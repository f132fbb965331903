"""Teacher cache: contents, resume after an injected failure, corrupt-shard detection, disk check, 2 ranks."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from sam3_edge.cache import CacheError, open_cache
from sam3_edge.cache import build as cache_build
from sam3_edge.cache.config import CacheParams
from sam3_edge.cache.distributed import Ranks
from sam3_edge.cache.job import CacheJob
from sam3_edge.cache.run import cache_teacher
from sam3_edge.teacher import load_teacher
from sam3_edge.teacher.load import teacher_id

PARAMS = CacheParams(prompts_per_image=2, images_per_shard=3, batch_size=2)


def _build(inputs, out, params=PARAMS, **kw):
    index_dir, teacher_dir = inputs
    adapter = load_teacher(teacher_dir, fpn_levels=params.levels)
    job = CacheJob(Path(out), Ranks(**kw), params.disk_margin)
    return cache_build.build_image_cache(
        adapter,
        teacher_id=teacher_id(teacher_dir),
        index_file=index_dir / "concepts_train.json",
        params=params,
        job=job,
    )


def test_cache_contents_match_the_contract(cache_inputs, tmp_path):
    index_dir, teacher_dir = cache_inputs
    metrics = cache_teacher(
        "image",
        teacher_dir=teacher_dir,
        index_file=index_dir / "concepts_train.json",
        out_dir=tmp_path / "c",
        params=PARAMS,
    )
    cache = open_cache(tmp_path / "c")
    assert metrics["samples"] == len(cache) == 8 * 2 and metrics["images"] == 8 and metrics["shards"] == 3
    assert cache.verify() == 3 and cache.manifest["complete"] is True
    key = cache.keys()[0]
    meta = cache.meta(key)
    assert {"pair_id", "index_file", "image", "prompt", "targets", "image_key"} <= set(meta)
    t = cache.load(key)
    assert set(t) == {"fpn_0", "fpn_1", "encoder", "mask_logits", "boxes", "class_logits", "presence_logit", "text"}
    assert all(v.dtype == torch.float16 for v in t.values())
    assert t["fpn_0"].shape == (32, 8, 8) and t["fpn_1"].shape == (32, 4, 4)
    assert t["mask_logits"].shape == (6, 8, 8) and t["boxes"].shape == (6, 4) and t["class_logits"].shape == (6,)
    assert t["presence_logit"].shape == (1,) and t["encoder"].shape == (16, 32) and t["text"].shape == (32,)
    # the stored outputs are the teacher's (fp16 of a fresh forward on the same prompt)
    from sam3_edge.data.datasets import read_image, resize_image, resolve_path
    from sam3_edge.types import Prompt

    adapter = load_teacher(teacher_dir)
    image = resize_image(read_image(resolve_path(index_dir / "concepts_train.json", meta["image"])), 56)
    with torch.no_grad():
        fresh = adapter(image[None], [Prompt.from_json(meta["prompt"])])
    torch.testing.assert_close(t["mask_logits"].float(), fresh["mask_logits"][0], atol=2e-2, rtol=1e-2)
    torch.testing.assert_close(t["text"].float(), fresh["text"][0], atol=2e-2, rtol=1e-2)
    assert metrics["real_profile_estimate"]["mb_per_image"] > 0


def test_resume_after_injected_failure_keeps_finished_shards(cache_inputs, tmp_path, monkeypatch):
    out = tmp_path / "c"
    real = cache_build.compute_image_units
    calls = []

    def failing(adapter, units, load_image, params):
        calls.append(units[0].key)
        if len(calls) == 2:
            raise RuntimeError("injected failure")
        return real(adapter, units, load_image, params)

    monkeypatch.setattr(cache_build, "compute_image_units", failing)
    with pytest.raises(RuntimeError, match="injected"):
        _build(cache_inputs, out)
    assert (out / "shard-00000.safetensors").exists() and not (out / "shard-00001.safetensors").exists()
    assert not list(out.glob("*.tmp")), "a killed run must leave no partial file"
    first_mtime = (out / "shard-00000.safetensors").stat().st_mtime_ns
    monkeypatch.setattr(cache_build, "compute_image_units", real)
    stats = _build(cache_inputs, out)
    assert stats["kept"] == 1 and stats["built"] == 2
    assert (out / "shard-00000.safetensors").stat().st_mtime_ns == first_mtime
    assert open_cache(out).verify() == 3


def test_corrupt_shard_is_detected_and_rebuilt(cache_inputs, tmp_path):
    out = tmp_path / "c"
    _build(cache_inputs, out)
    shard = out / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="shard-00001.*sha256 mismatch"):
        open_cache(out).verify()
    stats = _build(cache_inputs, out)
    assert stats["built"] == 1 and stats["kept"] == 2
    assert open_cache(out).verify() == 3


def test_incomplete_cache_refuses_to_open_and_disk_check_fails_early(cache_inputs, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**6, 10**6, 1000))
    with pytest.raises(CacheError, match="not enough disk space"):
        _build(cache_inputs, tmp_path / "c")
    assert not list((tmp_path / "c").glob("shard-*"))


def _rank_worker(rank, world, port, inputs, out):
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        _build(inputs, out, rank=rank, world_size=world, barrier=dist.barrier)
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.slow
def test_two_ranks_give_the_same_manifest_as_one(cache_inputs, tmp_path):
    torch.set_num_threads(1)
    _build(cache_inputs, tmp_path / "one")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank_worker, args=(2, port, cache_inputs, tmp_path / "two"), nprocs=2, join=True)
    one = (tmp_path / "one" / "manifest.json").read_text().replace(str(tmp_path / "one"), "X")
    two = (tmp_path / "two" / "manifest.json").read_text().replace(str(tmp_path / "two"), "X")
    assert one == two
    assert open_cache(tmp_path / "two").verify() == 3
