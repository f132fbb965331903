"""A fake teacher cache written through the real cache layout (write_sharded), for the student training tests.

The fake teacher's outputs are derived from the GT (masks as +-4 logits, confident class logits on the target
queries, presence from the pair), so distillation has a meaningful signal without running any teacher.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

TEACHER_SIZE = 112
FAKE_Q = 6


def make_fake_cache(index_file: Path, out_dir: Path, *, mix=("text", "point", "box"), per_image: int = 3) -> Path:
    from sam3_edge.cache.store import Unit, write_sharded
    from sam3_edge.data.datasets import load_concept_pairs, resize_masks
    from sam3_edge.data.prompts import sample_prompt
    from sam3_edge.data.rle import decode_rle

    pairs = load_concept_pairs(index_file)
    by_image: dict[str, list] = {}
    for p in pairs:
        by_image.setdefault(p.image, []).append(p)
    units = []
    for n, (image, group) in enumerate(by_image.items()):
        rng = np.random.default_rng([0, n])
        samples = {}
        for k in range(per_image):
            pair = group[k % len(group)]
            kind = mix[k % len(mix)] if pair.instances else "text"
            prompt, targets = sample_prompt(pair, kind, rng, image_size=TEACHER_SIZE)
            samples[f"{n:06d}-{k}"] = {
                "pair_id": pair.pair_id,
                "index_file": str(index_file),
                "image": image,
                "image_key": f"img{n:06d}",
                "prompt": prompt.to_json(),
                "targets": targets,
            }
        units.append(Unit(key=f"img{n:06d}", samples=samples, meta={"image": image}))
    by_id = {p.pair_id: p for p in pairs}

    def compute(us):
        out = {}
        for u in us:
            g = torch.Generator().manual_seed(len(u.key))
            out[f"{u.key}/fpn_0"] = torch.randn(16, 16, 16, generator=g).half()
            out[f"{u.key}/fpn_1"] = torch.randn(16, 8, 8, generator=g).half()
            for key, meta in u.samples.items():
                pair = by_id[meta["pair_id"]]
                inst = [pair.instances[t] for t in meta["targets"]][:FAKE_Q]
                masks = torch.zeros(FAKE_Q, 16, 16)
                boxes = torch.tensor([[0.1, 0.1, 0.3, 0.3]]).repeat(FAKE_Q, 1)
                cls = torch.full((FAKE_Q,), -6.0)
                if inst:
                    m = resize_masks(np.stack([decode_rle(i.rle) for i in inst]), 16).float()
                    masks[: len(inst)] = m
                    sc = torch.tensor([pair.width, pair.height] * 2, dtype=torch.float32)
                    boxes[: len(inst)] = torch.tensor([i.box for i in inst]) / sc
                    cls[: len(inst)] = 6.0
                out[f"{key}/mask_logits"] = (masks * 8 - 4).half()
                out[f"{key}/boxes"] = boxes.half()
                out[f"{key}/class_logits"] = cls.half()
                out[f"{key}/presence_logit"] = torch.tensor([6.0 if inst else -6.0]).half()
                out[f"{key}/text"] = torch.randn(24, generator=g).half()  # the phrase embedding (teacher width 24)
                out[f"{key}/encoder"] = F.avg_pool2d(torch.randn(1, 16, 8, 8, generator=g), 1)[0].flatten(1).T.half()
        return out

    header = {
        "kind": "image",
        "teacher_id": "fake-teacher",
        "image_size": TEACHER_SIZE,
        "config_hash": "fake0",
        "dtype": "float16",
    }
    write_sharded(out_dir, units=units, units_per_shard=2, compute=compute, header=header, bytes_per_unit=1)
    return out_dir


def make_fake_video_cache(index_file: Path, out_dir: Path) -> Path:
    """Per-clip ``frames_fpn`` [T, 16, 8, 8] + ``frame_indices`` in the real video-cache layout."""
    from sam3_edge.cache.store import Unit, write_sharded
    from sam3_edge.data.datasets import load_video_records

    units = []
    for r in load_video_records(index_file):
        meta = {
            "video": r.video,
            "num_frames": r.num_frames,
            "frame_indices": list(range(r.num_frames)),
            "annotated_frames": list(r.annotated_frames),
            "fps": r.fps,
        }
        units.append(Unit(key=r.video_id, samples={r.video_id: {**meta, "index_file": str(index_file)}}, meta=meta))

    def compute(us):
        g = torch.Generator().manual_seed(0)
        out = {}
        for u in us:
            t = len(u.meta["frame_indices"])
            out[f"{u.key}/frames_fpn"] = torch.randn(t, 16, 8, 8, generator=g).half()
            out[f"{u.key}/frame_indices"] = torch.tensor(u.meta["frame_indices"], dtype=torch.int64)
        return out

    header = {
        "kind": "video",
        "teacher_id": "fake-teacher",
        "image_size": TEACHER_SIZE,
        "config_hash": "fakev",
        "frame_shape": [16, 8, 8],
        "dtype": "float16",
    }
    write_sharded(out_dir, units=units, units_per_shard=2, compute=compute, header=header, bytes_per_unit=1)
    return out_dir
