"""Train the bootstrap teacher (tiny ``Sam3Model``) on the synthetic train split with ground-truth supervision.

Each step encodes ``images_per_step`` images once and runs ``prompts_per_image`` prompts over the shared vision
features (text / point / box as ``prompt_mix``), with the same set-prediction criterion the student uses
(``sam3_edge.core.losses``). The run resumes from ``<out>/.resume/state.pt`` after being killed, and the final
directory holds ``config.json`` + ``model.safetensors`` + tokenizer + ``teacher.json``.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sam3_edge.config import params_hash, to_dict
from sam3_edge.core.losses import set_prediction_loss
from sam3_edge.data.groups import load_groups, sample_group_prompts
from sam3_edge.teacher.adapter import TeacherAdapter
from sam3_edge.teacher.config import TeacherParams
from sam3_edge.teacher.data import geometry_eval_prompts, pair_samples
from sam3_edge.teacher.evaluate import evaluate_predictor
from sam3_edge.teacher.model import build_bootstrap_model
from sam3_edge.teacher.tokenizer import build_word_tokenizer
from sam3_edge.utils import atomic_path, progress_disabled

LOG = logging.getLogger("sam3_edge.teacher")
RESUME = ".resume/state.pt"


def _lr_at(step: int, *, base: float, warmup: int, total: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _save_resume(
    path: Path, adapter: TeacherAdapter, opt: torch.optim.Optimizer, step: int, rng: np.random.Generator, phash: str
) -> None:
    state = {
        "model": adapter.model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "params_hash": phash,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train_bootstrap(
    params: TeacherParams, *, train_index: str | Path, val_index: str | Path, out_dir: str | Path
) -> dict:
    """Train, evaluate on val, save the teacher directory; returns the metrics for ``metrics/teacher.json``."""
    out = Path(out_dir)
    tp = params.train
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    groups = load_groups(train_index, image_size=params.image_size, mask_size=tp.mask_size, desc="load train")
    tokenizer = build_word_tokenizer(p.text for g in groups for p in g.pairs)
    model = build_bootstrap_model(
        params.model, image_size=params.image_size, vocab_size=len(tokenizer), seed=params.seed
    )
    adapter = TeacherAdapter(
        model=model,
        tokenizer=tokenizer,
        image_size=params.image_size,
        fpn_levels=params.fpn_levels,
        point_box_size=params.point_box_size,
        name="bootstrap",
    )
    opt = torch.optim.AdamW(model.parameters(), lr=tp.lr, weight_decay=tp.weight_decay)
    phash = params_hash(params)
    resume = out / RESUME
    start = 0
    if resume.exists():
        state = torch.load(resume, weights_only=True)
        if state.get("params_hash") == phash:
            model.load_state_dict(state["model"], strict=True)
            opt.load_state_dict(state["optimizer"])
            rng.bit_generator.state = state["numpy_rng"]
            torch.set_rng_state(state["torch_rng"])
            start = int(state["step"])
            LOG.info("resuming bootstrap teacher training at step %d/%d", start, tp.steps)
        else:
            LOG.info("ignoring %s: it was written with other teacher params", resume)
    model.train()
    t0 = time.perf_counter()
    order: list[int] = []
    history: dict[str, float] = {}
    bar = tqdm(range(start, tp.steps), desc="train teacher", disable=progress_disabled(), initial=start, total=tp.steps)
    for step in bar:
        if len(order) < tp.images_per_step:
            order.extend(rng.permutation(len(groups)).tolist())
        batch_order, order = order[: tp.images_per_step], order[tp.images_per_step :]
        images, prompts, index, masks, boxes = sample_group_prompts(
            groups,
            batch_order,
            prompts_per_image=params.train.prompts_per_image,
            prompt_mix=params.train.prompt_mix,
            rng=rng,
            image_size=params.image_size,
        )
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, base=tp.lr, warmup=tp.warmup_steps, total=tp.steps)
        vision = adapter.encode_images(images)
        outputs = adapter.forward_prompts(vision, prompts, side=float(params.image_size), image_index=index)
        if outputs["mask_logits"].shape[-1] > tp.mask_size:
            raise ValueError(
                f"teacher.train.mask_size={tp.mask_size} but the model predicts "
                f"{outputs['mask_logits'].shape[-1]} px masks: set it to that or finer"
            )
        terms = set_prediction_loss(
            mask_logits=outputs["mask_logits"],
            boxes=outputs["boxes"],
            class_logits=outputs["class_logits"],
            presence_logits=outputs["presence_logit"],
            semantic_logits=outputs["semantic_logits"],
            target_masks=masks,
            target_boxes=boxes,
            weights=tp.loss,
        )
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tp.grad_clip)
        opt.step()
        for name, value in terms.items():
            v = float(value.detach())
            history[name] = 0.95 * history.get(name, v) + 0.05 * v
        bar.set_postfix(loss=f"{history['total']:.3f}")
        if (step + 1) % 100 == 0:
            LOG.info("step %d/%d %s", step + 1, tp.steps, " ".join(f"{k}={v:.3f}" for k, v in history.items()))
        if (step + 1) % tp.checkpoint_every == 0 and step + 1 < tp.steps:
            _save_resume(resume, adapter, opt, step + 1, rng, phash)
    train_seconds = time.perf_counter() - t0
    metrics = evaluate_teacher(adapter, params, val_index=val_index)
    save_bootstrap(adapter, params, out)
    shutil.rmtree(resume.parent, ignore_errors=True)  # the shipped directory holds the weights and teacher.json only
    metrics["train"] = {
        "steps": tp.steps,
        "resumed_from_step": start,
        "seconds": round(train_seconds, 1),
        "final_loss": {k: round(v, 4) for k, v in history.items()},
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
    }
    return metrics


def evaluate_teacher(adapter: TeacherAdapter, params: TeacherParams, *, val_index: str | Path) -> dict:
    """Val metrics (text instance mIoU, presence P/R/F1, point/box mIoU, whole-image baseline)."""
    ev = params.eval
    groups = load_groups(
        val_index, image_size=params.image_size, mask_size=params.image_size, max_pairs=ev.max_pairs, desc="load val"
    )
    samples = pair_samples(groups)
    geometry = geometry_eval_prompts(
        samples, per_pair=ev.point_box_prompts_per_pair, seed=params.seed, image_size=params.image_size
    )
    adapter.eval()
    return evaluate_predictor(adapter, samples, batch_size=ev.batch_size, seed=params.seed, geometry_prompts=geometry)


def save_bootstrap(adapter: TeacherAdapter, params: TeacherParams, out: Path) -> None:
    from sam3_edge.teacher.load import weights_digest, write_teacher_meta

    out.mkdir(parents=True, exist_ok=True)
    # save_pretrained writes in place: write into a scratch folder beside ``out`` (same filesystem), then
    # os.replace each file into ``out``, so a kill never leaves a truncated model.safetensors behind.
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.tmp-") as scratch:
        adapter.model.save_pretrained(scratch)  # safetensors (the only format in transformers 5)
        adapter.tokenizer.save_pretrained(scratch)
        for path in sorted(Path(scratch).iterdir()):
            os.replace(path, out / path.name)
    digest = weights_digest(out)
    write_teacher_meta(
        out,
        {
            "kind": "bootstrap",
            "source": "bootstrap",
            "teacher_id": f"bootstrap-sam3-tiny@{digest}",
            "image_size": params.image_size,
            "fpn_levels": list(params.fpn_levels),
            "point_box_size": params.point_box_size,
            "image_mean": [0.5] * 3,
            "image_std": [0.5] * 3,
            "params": to_dict(params),
        },
    )


def init_bootstrap_dir(params: TeacherParams, *, phrases: list[str], out_dir: str | Path) -> Path:
    """An untrained (freshly initialised) bootstrap teacher directory: for tests and pipeline dry runs."""
    tokenizer = build_word_tokenizer(phrases)
    model = build_bootstrap_model(
        params.model, image_size=params.image_size, vocab_size=len(tokenizer), seed=params.seed
    )
    adapter = TeacherAdapter(
        model=model,
        tokenizer=tokenizer,
        image_size=params.image_size,
        fpn_levels=params.fpn_levels,
        point_box_size=params.point_box_size,
        name="bootstrap",
    )
    save_bootstrap(adapter, params, Path(out_dir))
    return Path(out_dir)
