"""Real program inputs for calibration, parity and benchmarks: val image-phrase pairs and an SA-V clip.

Inputs are built exactly as the runners build them (``prepare_prompts`` + the eager ``text`` program), so the
int8 observers see the activation ranges of deployment. Without a val index (unit tests) random images are used
and the caller records ``calibration: random``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sam3_edge.types import Prompt

KINDS = ("text", "point", "box")


def index_samples(index: str | Path | None, n: int, *, image_size: int, seed: int) -> list[tuple[torch.Tensor, Prompt]]:
    """``n`` (image [1, 3, S, S], prompt) pairs from a concept index (text/point/box in turn; the pipeline passes
    the train split's: the val split is what the quantized students are scored on)."""
    rng = np.random.default_rng(seed)
    if index is None:
        return [
            (
                torch.rand(1, 3, image_size, image_size, generator=torch.Generator().manual_seed(seed + i)),
                Prompt(kind="text", text="a red circle"),
            )
            for i in range(n)
        ]
    from sam3_edge.data.datasets import load_concept_pairs, read_image, resize_image, resolve_path
    from sam3_edge.data.prompts import sample_prompt

    pairs = load_concept_pairs(index)
    if not pairs:
        raise ValueError(f"{index}: no concept pairs to calibrate on")
    order = rng.permutation(len(pairs))[:n]
    out = []
    for i, j in enumerate(order):
        pair = pairs[int(j)]
        kind = KINDS[i % len(KINDS)] if not pair.negative else "text"
        prompt, _ = sample_prompt(pair, kind, rng, image_size=image_size)
        image = resize_image(read_image(resolve_path(index, pair.image)), image_size)[None]
        out.append((image, prompt))
    return out


@torch.no_grad()
def program_inputs(student, samples: list[tuple[torch.Tensor, Prompt]]) -> dict[str, list[tuple[torch.Tensor, ...]]]:
    """Input tuples for ``text``, ``image`` and ``video_step`` (samples chained as frames through the memory)."""
    from sam3_edge.models.encoders import build_tokenizer
    from sam3_edge.models.prompts import prepare_prompts

    c = student.config
    tokenizer = build_tokenizer(c.context_length)
    programs = student.export_programs()
    text_prog, image_prog, video_prog = (programs[k][0] for k in ("text", "image", "video_step"))
    state, state_valid = student.init_memory(1)
    out: dict[str, list[tuple[torch.Tensor, ...]]] = {"text": [], "image": [], "video_step": []}
    for image, prompt in samples:
        pt = prepare_prompts([prompt], tokenizer=tokenizer, max_points=c.max_points)
        emb, valid = text_prog(pt.token_ids)
        image_in = (image, emb, valid, pt.points, pt.box, pt.box_valid)
        out["text"].append((pt.token_ids,))
        out["image"].append(image_in)
        out["video_step"].append((*image_in, state, state_valid))
        state = video_prog(*image_in, state, state_valid)[-1]  # the new memory state comes last
        state_valid = torch.ones_like(state_valid)
    return {k: v for k, v in out.items() if k in programs}


def save_inputs(path: str | Path, inputs: dict[str, list[tuple[torch.Tensor, ...]]]) -> None:
    """``<method>/<sample>/<arg>`` tensors in one safetensors file."""
    flat = {
        f"{m}/{i}/{a}": t.detach().clone().contiguous()
        for m, items in inputs.items()
        for i, args in enumerate(items)
        for a, t in enumerate(args)
    }
    save_file(flat, str(path))


def load_inputs(path: str | Path) -> dict[str, list[tuple[torch.Tensor, ...]]]:
    try:
        flat = load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise ValueError(f"{path}: unreadable inputs file ({err}): re-run the quantize stage") from None
    nested: dict[str, dict[int, dict[int, torch.Tensor]]] = {}
    for key, t in flat.items():
        m, i, a = key.split("/")
        nested.setdefault(m, {}).setdefault(int(i), {})[int(a)] = t
    return {
        m: [tuple(args[a] for a in sorted(args)) for _, args in sorted(items.items())] for m, items in nested.items()
    }
