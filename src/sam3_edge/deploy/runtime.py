"""Run exported ``.pte`` files through ``executorch.runtime``; :class:`PtePredictor` scores them like any model.

An export directory (written by the ``export`` stage) holds the programs split the way an app uses them
(:data:`PTE_FILES`): ``text.pte`` (the ``text`` method: phrase tokens -> prompt embeddings, run once when the
phrase changes, then freed) and ``image.pte`` (``image`` and ``video_step``: they take the prompt embeddings and
never run the text tower), plus ``meta.json`` (backend, variant, the student's ``model_config``, per-file methods,
sizes and delegation). :class:`PteBundle` routes each method to its file and loads a file on first use;
:class:`PtePredictor` takes the directory or one of its ``.pte`` files and implements
:class:`sam3_edge.types.Predictor`, so the evaluation driver scores the ``.pte`` files exactly as it scores the
eager student.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sam3_edge.types import Prediction, Prompt, follow_prompt
from sam3_edge.utils import read_json

META_NAME = "meta.json"
PTE_FILES = {"text.pte": ("text",), "image.pte": ("image", "video_step")}  # file -> the methods it holds
METHOD_FILES = {m: name for name, methods in PTE_FILES.items() for m in methods}
IMAGE_OUTPUTS = ("mask_logits", "boxes", "scores", "presence", "iou")
VIDEO_OUTPUTS = (*IMAGE_OUTPUTS, "memory_state")  # video_step: the image outputs, then the new memory state


def resolve_export(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """``(export folder, meta)`` from an export directory or one of its ``.pte`` files; clear errors for a
    skipped export, a folder written before the split (one ``model.pte``) and missing files."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    meta = read_json(folder / META_NAME)
    if meta.get("status") != "ok":
        raise ValueError(f"{folder}: export has status {meta.get('status')!r} ({meta.get('reason', 'no reason')})")
    if "files" not in meta:
        raise ValueError(f"{folder}: export written before the text / image split (no 'files' in meta.json): re-export")
    for name in meta["files"]:
        if not (folder / name).is_file():
            raise ValueError(f"{folder / name}: .pte file not found")
    return folder, meta


def check_pte_file(path: Path) -> None:
    """Refuse a file that is not a whole ``.pte`` before the runtime sees it (ValueError naming the file).

    Random bytes make the runtime's loader log the bogus identifier and abort the whole process (pybind11 cannot
    decode the log line), so the flatbuffer identifier and the extended header's declared size are checked here.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(40)
    except FileNotFoundError:
        raise ValueError(f"{path}: .pte file not found") from None
    if len(head) < 8 or head[4:6] != b"ET" or not head[6:8].isdigit():
        raise ValueError(f"{path}: not an ExecuTorch program (no ET flatbuffer identifier)")
    if head[8:12] == b"eh00" and len(head) >= 40:
        program_size = int.from_bytes(head[16:24], "little")
        segment_base, segment_size = int.from_bytes(head[24:32], "little"), int.from_bytes(head[32:40], "little")
        expected = segment_base + segment_size if segment_size else program_size
        if size < expected:
            raise ValueError(f"{path}: truncated .pte ({size} bytes, header says {expected})")


class PteProgram:
    """A loaded ``.pte``: ``run(method, inputs) -> list of tensors``; methods are loaded on first use."""

    def __init__(self, pte: str | Path) -> None:
        import executorch.kernels.quantized  # noqa: F401  (portable quantized kernels for non-delegated ops)
        from executorch.runtime import Runtime

        self.path = Path(pte)
        check_pte_file(self.path)
        self.runtime = Runtime.get()
        try:
            self.program = self.runtime.load_program(self.path)
        except RuntimeError as err:
            raise ValueError(f"{self.path}: the ExecuTorch runtime cannot load this .pte ({err})") from None
        self._methods: dict[str, Any] = {}

    @property
    def method_names(self) -> set[str]:
        return set(self.program.method_names)

    def run(self, method: str, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if method not in self._methods:
            if method not in self.method_names:
                raise KeyError(f"{self.path}: no method {method!r} (has {sorted(self.method_names)})")
            self._methods[method] = self.program.load_method(method)
        return list(self._methods[method].execute([t.contiguous() for t in inputs]))


class PteBundle:
    """The ``.pte`` files of one export folder: ``run(method, inputs)`` loads the method's file on first use;
    ``release(name)`` frees a file's program (an app drops ``text.pte`` once the phrase is encoded)."""

    def __init__(self, folder: str | Path, meta: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.meta = meta if meta is not None else resolve_export(self.folder)[1]
        self.files = {m: name for name, info in self.meta["files"].items() for m in info["methods"]}
        self._programs: dict[str, PteProgram] = {}

    @property
    def method_names(self) -> set[str]:
        return set(self.files)

    def program(self, method: str) -> PteProgram:
        if method not in self.files:
            raise KeyError(f"{self.folder}: no method {method!r} in its .pte files (has {sorted(self.files)})")
        name = self.files[method]
        if name not in self._programs:
            self._programs[name] = PteProgram(self.folder / name)
        return self._programs[name]

    def run(self, method: str, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return self.program(method).run(method, inputs)

    def release(self, name: str) -> None:
        self._programs.pop(name, None)


def backend_runnable(backend: str) -> tuple[bool, str]:
    """Whether this Python runtime can execute ``backend``'s delegates, and why not."""
    from executorch.runtime import Runtime

    from sam3_edge.deploy.lowering import BACKEND_IDS

    names = Runtime.get().backend_registry.registered_backend_names
    backend_id = BACKEND_IDS[backend]
    if backend == "coreml":
        return False, f"the Core ML delegate needs an Apple OS (macOS/iOS); this runtime has {sorted(names)}"
    if backend == "qnn":
        return False, "the QNN delegate runs on a Qualcomm device (HTP), not on this host"
    if backend_id not in names:
        return False, f"{backend_id} is not registered in this executorch runtime ({sorted(names)})"
    return True, ""


class PtePredictor:
    """:class:`sam3_edge.types.Predictor` over an exported student (``text.pte`` then ``image.pte``).

    ``PtePredictor(path, *, name=None)``: ``path`` = export directory (the ``.pte`` files + ``meta.json``) or one
    of its ``.pte`` files. Batches are run one sample at a time (the programs have static batch 1). Images of another
    size are resized to the student's input size and prompts scaled, as in the eager ``StudentPredictor``.
    """

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        from sam3_edge.models.config import StudentConfig
        from sam3_edge.models.encoders import build_tokenizer

        folder, meta = resolve_export(path)
        ok, why = backend_runnable(meta["backend"])
        if not ok:
            raise RuntimeError(f"{folder}: cannot execute here: {why}")
        self.meta = meta
        self.config = StudentConfig.from_json(meta["model_config"])
        self.name = name or f"pte_{meta['backend']}_{meta['model']}_{meta['variant']}"
        self.image_size = self.config.image_size
        self.program = PteBundle(folder, meta)
        self.tokenizer = build_tokenizer(self.config.context_length)

    def _frames(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] -> float32 at the student's input size (checked)."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] != images.shape[-2]:
            raise ValueError(f"images must be [B, 3, S, S], got {tuple(images.shape)}")
        x = images.float()
        if images.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return x

    def _prompt_inputs(self, prompts: list[Prompt], side: int) -> list[tuple[torch.Tensor, ...]]:
        """Per prompt (in pixels of a ``side`` input): text_emb, text_valid (the ``text`` method), points, box,
        box_valid."""
        from sam3_edge.models.prompts import prepare_prompts

        scale = self.image_size / side
        pt = prepare_prompts(prompts, tokenizer=self.tokenizer, max_points=self.config.max_points, scale=scale)
        out = []
        for i in range(len(prompts)):
            emb, valid = self.program.run("text", [pt.token_ids[i : i + 1]])
            out.append((emb, valid, pt.points[i : i + 1], pt.box[i : i + 1], pt.box_valid[i : i + 1]))
        return out

    def encode(self, images: torch.Tensor, prompts: list[Prompt]) -> list[tuple[torch.Tensor, ...]]:
        """Image-method input tuples (one per sample): image, text_emb, text_valid, points, box, box_valid."""
        x = self._frames(images)
        if len(prompts) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(prompts)} prompts")
        return [(x[i : i + 1], *p) for i, p in enumerate(self._prompt_inputs(prompts, images.shape[-1]))]

    @torch.no_grad()
    def predict(self, images: torch.Tensor, prompts: list[Prompt]) -> Prediction:
        outs = [self.program.run("image", inputs) for inputs in self.encode(images, prompts)]
        cat = {k: torch.cat([o[j] for o in outs]) for j, k in enumerate(IMAGE_OUTPUTS)}
        return _prediction(cat)

    @torch.no_grad()
    def predict_video(self, frames: torch.Tensor, prompt: Prompt) -> list[Prediction]:
        """frames [T, 3, S, S]; ``prompt`` on frame 0 -> T predictions through ``video_step``, the memory state
        carried from frame to frame: the eager ``StudentPredictor.predict_video`` protocol (later frames get
        ``follow_prompt``: the phrase, nothing for a box / point), on the deployed program."""
        x = self._frames(frames)
        side = frames.shape[-1]
        first = self._prompt_inputs([prompt], side)[0]
        later = first if len(x) == 1 else self._prompt_inputs([follow_prompt(prompt)], side)[0]
        c = self.config
        state, valid = torch.zeros(1, c.memory_slots, c.dim), torch.zeros(1)
        preds = []
        for t in range(len(x)):
            out = self.program.run("video_step", (x[t : t + 1], *(first if t == 0 else later), state, valid))
            if len(out) != len(VIDEO_OUTPUTS):
                raise ValueError(
                    f"{self.program.folder}: video_step returns {len(out)} outputs, not {len(VIDEO_OUTPUTS)} "
                    f"{VIDEO_OUTPUTS}: exported before it returned the whole prediction (2026-12-05); re-export"
                )
            named = dict(zip(VIDEO_OUTPUTS, out, strict=True))
            preds.append(_prediction(named))
            state, valid = named["memory_state"], torch.ones(1)
        return preds


def _prediction(out: dict[str, torch.Tensor]) -> Prediction:
    return Prediction(
        mask_logits=out["mask_logits"],
        boxes=out["boxes"],
        scores=out["scores"],
        presence=out["presence"],
        iou=out["iou"],
    )


def load_pte_predictor(path: str | Path, *, name: str | None = None) -> PtePredictor:
    """What the evaluation driver calls for a ``pte:<path>`` model spec (export folder or one of its ``.pte``)."""
    return PtePredictor(path, name=name)
