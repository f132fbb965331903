from __future__ import annotations

import json
import shutil
import tarfile

import pytest

from sam3_edge.config import from_dict
from sam3_edge.data.config import DataParams, RealSplit, SacoSource
from sam3_edge.data.datasets import load_concept_pairs, load_image_records, load_video_records, resolve_path
from sam3_edge.data.index import DataConfigError, IndexOptions, build_index
from sam3_edge.data.prepare import prepare_data

OPTIONS = IndexOptions(max_pixels=10**8)


def test_index_of_synthetic_data_round_trips(tiny_synthetic, tmp_path):
    out, sources = tiny_synthetic
    index = tmp_path / "index"
    metrics = build_index(sources, index, extract_dir=tmp_path / "x", options=OPTIONS)
    assert sorted(p.name for p in index.iterdir()) == sorted(
        [f"{k}_{s}.json" for k in ("concepts", "images", "videos") for s in ("train", "val")] + ["skipped.json"]
    )
    assert not (tmp_path / "index.partial").exists()
    images = load_image_records(index / "images_train.json")
    assert len(images) == 6 == metrics["sa1b"]["train"]["images"]
    assert resolve_path(index / "images_train.json", images[0].image) == (out / "sa1b/train/sa_1.jpg").resolve()
    pairs = load_concept_pairs(index / "concepts_val.json")
    assert metrics["saco"]["val"]["pairs"] == len(pairs)
    assert metrics["saco"]["val"]["negative_pairs"] == sum(p.negative for p in pairs)
    assert metrics["saco"]["val"]["negative_fraction"] >= 0.3
    assert len({p.pair_id for p in pairs}) == len(pairs)
    videos = load_video_records(index / "videos_val.json")
    assert len(videos) == 1 and sorted(videos[0].masklets[0].frames) == [0, 4, 8]
    assert metrics["skipped"] == {"total": 0, "by_reason": {}, "by_dataset": {}}


def test_bad_files_are_recorded_and_counted_skips(tiny_synthetic, tmp_path):
    out, _ = tiny_synthetic
    copy = tmp_path / "synthetic"
    shutil.copytree(out, copy)
    (copy / "sa1b/train/sa_3.json").write_text("")
    (copy / "sa1b/train/sa_4.jpg").write_bytes(b"garbage")
    (copy / "sav/val/sav_1000001.mp4").write_bytes(b"garbage")
    from sam3_edge.data.generate import synthetic_sources

    metrics = build_index(synthetic_sources(copy), tmp_path / "index", extract_dir=tmp_path / "x", options=OPTIONS)
    assert metrics["sa1b"]["train"]["images"] == 4
    assert metrics["sav"]["val"]["videos"] == 0
    assert metrics["skipped"]["by_reason"]["empty_json"] == 1
    assert metrics["skipped"]["by_reason"]["bad_video"] == 1
    assert metrics["skipped"]["by_dataset"]["sav"] == 1
    skipped = json.loads((tmp_path / "index/skipped.json").read_text())
    assert {"dataset", "split", "file", "reason", "detail"} <= set(skipped[0])
    assert any(e["file"].endswith("sa_3.json") and e["split"] == "train" for e in skipped)
    # the SA-Co pairs of the broken image are skipped too, each naming the image
    assert any(e["dataset"] == "saco" and e["file"].endswith("sa_4.jpg") for e in skipped)


def test_missing_real_location_names_the_param(tmp_path):
    params = from_dict(
        DataParams,
        {
            "source": "real",
            "real": {
                "train": {"sa1b": [str(tmp_path / "nope")]},
                "val": {"saco": [{"annotations": str(tmp_path / "a.json"), "images": str(tmp_path)}]},
            },
        },
        prefix="data",
    )
    with pytest.raises(DataConfigError) as err:
        prepare_data(params, synthetic_dir=tmp_path / "s", index_dir=tmp_path / "i", extract_dir=tmp_path / "x")
    assert "data.real.train.sa1b[0]" in str(err.value) and str(tmp_path / "nope") in str(err.value)
    assert "data.real.val.saco[0].annotations" in str(err.value)
    assert not (tmp_path / "i").exists()


def test_real_profile_on_a_copy_with_a_tar_shard(tiny_synthetic, tmp_path):
    out, _ = tiny_synthetic
    real = tmp_path / "real"
    shutil.copytree(out, real)
    shard = real / "sa_000000.tar"
    with tarfile.open(shard, "w") as tar:
        for f in sorted((real / "sa1b/train").iterdir()):
            tar.add(f, arcname=f"./{f.name}")  # official shards list members as ./sa_<id>.{jpg,json}
    params = from_dict(
        DataParams,
        {
            "source": "real",
            "real": {
                "train": {
                    "sa1b": [str(shard)],
                    "sav": [str(real / "sav/train")],
                    "saco": [{"annotations": str(real / "saco/synthetic_train.json"), "images": str(real / "sa1b")}],
                },
                "val": {"sa1b": [str(real / "sa1b/val")], "sav": [str(real / "sav/val")]},
                "max_images_per_source": 5,
            },
        },
        prefix="data",
    )
    metrics = prepare_data(
        params, synthetic_dir=tmp_path / "syn", index_dir=tmp_path / "index", extract_dir=tmp_path / "extracted"
    )
    assert metrics["sa1b"]["train"]["images"] == 5 and metrics["sa1b"]["val"]["images"] == 4
    assert metrics["saco"]["train"]["pairs"] == 5 and metrics["saco"]["val"]["pairs"] == 0
    assert metrics["source_synthetic"] == 0 and (tmp_path / "syn").is_dir()
    images = load_image_records(tmp_path / "index/images_train.json")
    assert resolve_path(tmp_path / "index/images_train.json", images[0].image).is_file()
    assert (tmp_path / "extracted/sa_000000").is_dir()


def test_failed_index_leaves_no_partial_output(tiny_synthetic, tmp_path, monkeypatch):
    _, sources = tiny_synthetic
    index = tmp_path / "index"
    build_index(sources, index, extract_dir=tmp_path / "x", options=OPTIONS)
    before = {p.name: p.read_bytes() for p in index.iterdir()}

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr("sam3_edge.data.index.read_saco", boom)
    with pytest.raises(RuntimeError):
        build_index(sources, index, extract_dir=tmp_path / "x", options=OPTIONS)
    assert {p.name: p.read_bytes() for p in index.iterdir()} == before


def test_saco_sources_get_distinct_pair_ids(tiny_synthetic, tmp_path):
    out, _ = tiny_synthetic
    saco = SacoSource(annotations=str(out / "saco/synthetic_val.json"), images=str(out / "sa1b"))
    split = RealSplit(saco=(saco, saco))
    build_index({"val": split}, tmp_path / "index", extract_dir=tmp_path / "x", options=OPTIONS)
    pairs = load_concept_pairs(tmp_path / "index/concepts_val.json")
    assert len({p.pair_id for p in pairs}) == len(pairs)
