from __future__ import annotations

import json

import numpy as np
import pytest

from sam3_edge.config import ParamsError, from_dict
from sam3_edge.data.config import DataParams, SyntheticParams
from sam3_edge.data.generate import generate_synthetic
from sam3_edge.data.rle import decode_rle
from sam3_edge.data.sa1b import read_sa1b
from sam3_edge.data.saco import read_saco
from sam3_edge.data.sav import read_sav
from sam3_edge.data.synthetic import sample_scene
from sam3_edge.data.synthetic_video import sample_clip
from sam3_edge.data.video import read_video_frames
from tests.support.data import TINY_DATA


def test_scene_is_deterministic_and_masks_are_visible_parts():
    a = sample_scene(np.random.default_rng([0, 0, 3]), TINY_DATA)
    b = sample_scene(np.random.default_rng([0, 0, 3]), TINY_DATA)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.phrases == b.phrases and a.objects == b.objects
    stack = np.stack(a.masks).astype(int)  # [K, S, S]
    assert stack.sum(0).max() <= 1, "visible masks of different objects must not overlap"
    assert all(m.any() for m in a.masks)


def test_phrases_mean_all_instances_of_the_concept():
    for i in range(20):
        scene = sample_scene(np.random.default_rng([1, 0, i]), SyntheticParams())
        for phrase in scene.phrases:
            words = phrase.text.split()
            size = words[0] if len(words) == 3 else None
            colour, shape = words[-2:]
            expected = tuple(
                k
                for k, o in enumerate(scene.objects)
                if o.colour == colour and o.shape == shape and (size is None or o.size == size)
            )
            assert phrase.instances == expected, phrase.text


def test_negative_fraction_knob_is_checked_and_reached():
    with pytest.raises(ParamsError, match="negative_fraction"):
        from_dict(DataParams, {"synthetic": {"negative_fraction": 0.2}}, prefix="data")
    with pytest.raises(ParamsError, match="large_size"):
        from_dict(DataParams, {"synthetic": {"image_size": 64}}, prefix="data")
    params = SyntheticParams()
    phrases = [p for i in range(60) for p in sample_scene(np.random.default_rng([2, 1, i]), params).phrases]
    assert sum(not p.instances for p in phrases) / len(phrases) >= 0.3


def test_clip_masks_follow_the_annotation_stride():
    clip = sample_clip(np.random.default_rng(0), TINY_DATA)
    assert clip.frames.shape == (9, 64, 64, 3)
    assert clip.annotated_frames == (0, 4, 8)
    assert clip.masks.shape[:2] == (3, len(clip.texts))


def test_readers_round_trip_the_synthetic_writer(tiny_synthetic):
    out, sources = tiny_synthetic
    src = sources["train"]
    # SA-1B: masks decoded from the written json equal the rendered visible masks
    scene = sample_scene(np.random.default_rng([0, 0, 0]), TINY_DATA)
    record = read_sa1b(out / "sa1b/train/sa_1.json", root=out, max_pixels=10**8)
    assert record.image == "sa1b/train/sa_1.jpg" and (record.width, record.height) == (96, 96)
    assert len(record.instances) == len(scene.masks)
    for inst, mask in zip(record.instances, scene.masks, strict=True):
        np.testing.assert_array_equal(decode_rle(inst.rle), mask)
        assert inst.point is not None and mask[int(inst.point[1]), int(inst.point[0])]
    # SA-Co: one pair per phrase, instances = the phrase's masks, boxes de-normalised back to pixels
    pairs, errors = read_saco(src.saco[0].annotations, src.saco[0].images, root=out, max_pixels=10**8)
    assert errors == []
    first = [p for p in pairs if p.image == "sa1b/train/sa_1.jpg"]
    assert [p.text for p in first] == [ph.text for ph in scene.phrases]
    for pair, phrase in zip(first, scene.phrases, strict=True):
        assert len(pair.instances) == len(phrase.instances)
        for inst, k in zip(pair.instances, phrase.instances, strict=True):
            np.testing.assert_array_equal(decode_rle(inst.rle), scene.masks[k])
            ys, xs = np.nonzero(scene.masks[k])
            np.testing.assert_allclose(inst.box, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), atol=1e-3)
    raw = json.loads((out / "saco/synthetic_train.json").read_text())
    assert {"id", "file_name", "text_input", "width", "height", "is_instance_exhaustive"} <= set(raw["images"][0])
    assert all(0 <= v <= 1 for a in raw["annotations"] for v in a["bbox"])
    # SA-V: decoded video has the annotated frames; masklets carry their noun phrase
    video = read_sav(out / "sav/train/sav_000001_manual.json", out / "sav/train/sav_000001.mp4", root=out)
    clip = sample_clip(np.random.default_rng([0, 10, 0]), TINY_DATA)
    assert video.num_frames == 9 and video.annotated_frames == (0, 4, 8) and video.fps == 24.0
    assert [m.text for m in video.masklets] == clip.texts
    for k, masklet in enumerate(video.masklets):
        for a, t in enumerate(video.annotated_frames):
            np.testing.assert_array_equal(decode_rle(masklet.frames[t]), clip.masks[a, k])
    frames = read_video_frames(out / "sav/train/sav_000001.mp4")
    assert frames.shape == (9, 64, 64, 3)
    assert (
        np.abs(frames.astype(int) - clip.frames.astype(int)).mean() < 6
    )  # MPEG-4 Part 2 at qscale 1: close to the render


def test_generation_resumes_and_is_byte_identical(tmp_path, tiny_synthetic):
    ref, _ = tiny_synthetic
    small = SyntheticParams(**{**TINY_DATA.__dict__})
    out = tmp_path / "synthetic"
    partial = tmp_path / "synthetic.partial"
    # simulate a killed run: a partial folder with some files of the same params already written
    generate_synthetic(out, small, seed=0)
    out.rename(partial)
    (partial / "sa1b/train/sa_2.jpg").unlink()
    (partial / "sav/val/sav_1000001.mp4").unlink()
    generate_synthetic(out, small, seed=0)
    assert not partial.exists()
    for f in sorted(p for p in ref.rglob("*") if p.is_file()):
        assert (out / f.relative_to(ref)).read_bytes() == f.read_bytes(), f
    # other params: the stale partial folder is discarded, not mixed in
    out.rename(partial)
    generate_synthetic(out, SyntheticParams(**{**TINY_DATA.__dict__, "num_val_images": 2}), seed=0)
    assert not (out / "sa1b/val/sa_1000003.jpg").exists()


def test_video_bytes_are_a_pure_function_of_the_frames(tmp_path):
    """The same frames give the same mp4 bytes, every time (libx264 failed this: 3 of 8 encodes differed)."""
    from sam3_edge.data.video import write_video

    clip = sample_clip(np.random.default_rng([0, 10, 1]), SyntheticParams(**{**TINY_DATA.__dict__, "video_frames": 24}))
    digests = set()
    for i in range(8):
        write_video(tmp_path / f"clip_{i}.mp4", clip.frames)
        digests.add((tmp_path / f"clip_{i}.mp4").read_bytes())
    assert len(digests) == 1


_GENERATE = """
import sys
from sam3_edge.data.config import SyntheticParams
from sam3_edge.data.generate import generate_synthetic
from tests.support.data import TINY_DATA
params = SyntheticParams(**{**TINY_DATA.__dict__, "num_train_videos": 3, "num_val_videos": 2, "video_frames": 24})
generate_synthetic(sys.argv[1], params, seed=0)
"""


@pytest.mark.slow
def test_data_is_byte_identical_across_processes_under_load(tmp_path):
    """Two processes write the synthetic data at once, beside a CPU hog: every file has the same bytes."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]  # the cwd of `python -c` is on its sys.path: tests.support imports
    hog = subprocess.Popen([sys.executable, "-c", "while True: sum(i * i for i in range(10**6))"])
    try:
        runs = [subprocess.Popen([sys.executable, "-c", _GENERATE, str(tmp_path / n)], cwd=root) for n in ("a", "b")]
        assert [r.wait(timeout=300) for r in runs] == [0, 0]
    finally:
        hog.kill()
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and any(f.suffix == ".mp4" for f in files_a)
    for f in files_a:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
