"""`sam3-edge predict`: one image and one prompt through a student checkpoint or an exported `.pte`.

Prints the instances (score, box in image pixels, area) and writes an overlay PNG. Coordinates of ``--point`` and
``--box`` are pixels of the given image; the phrase is kept with a point/box prompt (as SA-Co pairs keep it).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from sam3_edge.types import Prompt

if TYPE_CHECKING:  # torch-heavy modules load only when the command runs, so `sam3-edge --help` stays fast
    from sam3_edge.report.inference import ItemOutput
    from sam3_edge.types import Predictor


def _floats(text: str, n: int, what: str) -> tuple[float, ...]:
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != n:
        raise argparse.ArgumentTypeError(f"{what} must be {n} comma-separated numbers, got {text!r}")
    return values


def parse_point(text: str) -> tuple[float, float]:
    x, y = _floats(text, 2, "--point X,Y")
    return x, y


def parse_box(text: str) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = _floats(text, 4, "--box X0,Y0,X1,Y1")
    if x1 <= x0 or y1 <= y0:
        raise argparse.ArgumentTypeError(f"--box needs x0 < x1 and y0 < y1, got {text!r}")
    return x0, y0, x1, y1


def build_prompt(
    text: str | None,
    point: tuple[float, float] | None,
    box: tuple[float, float, float, float] | None,
    *,
    width: int,
    height: int,
) -> Prompt:
    """The prompt in pixels of the image; a point or box outside the image is an error naming it."""
    if point is not None and box is not None:
        raise ValueError("give --point or --box, not both (one geometric prompt per call)")
    for name, xy in (("--point", point), ("--box", box)):
        if xy is None:
            continue
        xs, ys = xy[0::2], xy[1::2]
        if min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height:
            raise ValueError(f"{name} {xy} lies outside the {width}x{height} image")
    if point is not None:
        return Prompt(kind="point", text=text or "", points=((point[0], point[1], 1),))
    if box is not None:
        return Prompt(kind="box", text=text or "", box=box)
    if not text:
        raise ValueError("give --prompt TEXT, --point X,Y or --box X0,Y0,X1,Y1")
    return Prompt(kind="text", text=text)


def load_spec(spec: str, *, name: str | None = None) -> Predictor:
    """``teacher:<dir>`` / ``student:<checkpoint>`` through ``sam3_edge.predictors.load_predictor``;
    ``pte:<file or export dir>`` through ``sam3_edge.deploy.runtime.PtePredictor`` directly."""
    from sam3_edge.predictors import load_predictor, parse_spec

    kind, path = parse_spec(spec)
    if kind != "pte":
        return load_predictor(spec, name=name)
    if not path.exists():
        raise FileNotFoundError(f"model spec {spec!r}: {path} does not exist")
    from sam3_edge.deploy.runtime import PtePredictor

    return PtePredictor(path, name=name)


def load_model(*, checkpoint: str | None = None, pte: str | None = None) -> Predictor:
    """A student checkpoint (eager) or an exported `.pte` (file or export directory) as a Predictor."""
    if (checkpoint is None) == (pte is None):
        raise ValueError("give exactly one of --checkpoint or --pte")
    return load_spec(f"student:{checkpoint}" if checkpoint is not None else f"pte:{pte}")


def describe(output: ItemOutput, prompt: Prompt, threshold: float) -> list[str]:
    lines = [f"presence {output.presence:.3f}"]
    if prompt.kind == "text":
        if not output.instances:
            lines.append(f"no instance with score >= {threshold}: the model answers that {prompt.text!r} is absent")
        for n, inst in enumerate(output.instances, 1):
            x0, y0, x1, y1 = inst.box
            lines.append(
                f"#{n}  score {inst.score:.3f}  box [{x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}]  "
                f"area {int(inst.mask.sum())} px"
            )
    elif output.top is not None:
        x0, y0, x1, y1 = output.top.box
        lines.append(
            f"#1  score {output.top.score:.3f}  box [{x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}]  "
            f"area {int(output.top.mask.sum())} px  (top query for the {prompt.kind} prompt)"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    from sam3_edge.data.datasets import read_image
    from sam3_edge.report.inference import run_predictor
    from sam3_edge.report.overlay import draw_prompt, overlay_masks, save_png

    try:
        image = read_image(args.image)
    except (ValueError, OSError) as err:
        print(f"error: cannot read image {args.image}: {err}", file=sys.stderr)
        return 2
    try:
        prompt = build_prompt(args.prompt, args.point, args.box, width=image.shape[1], height=image.shape[0])
        model = load_model(checkpoint=args.checkpoint, pte=args.pte)
    except (ValueError, FileNotFoundError, NotImplementedError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    [output] = run_predictor(model, [image], [prompt], score_threshold=args.threshold, batch_size=1)
    masks = [i.mask for i in output.instances] if prompt.kind == "text" else [output.top.mask] if output.top else []
    save_png(args.out, draw_prompt(overlay_masks(image, masks), prompt))
    print(f"{model.name}: {args.image} ({image.shape[1]}x{image.shape[0]}), {prompt.kind} prompt {prompt.text!r}")
    for line in describe(output, prompt, args.threshold):
        print(line)
    print(f"overlay written to {args.out}")
    return 0


def add_predict_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="segment one image with a prompt (student checkpoint or .pte)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--image", required=True, help="image file (jpg/png)")
    p.add_argument("--prompt", help='noun phrase, e.g. "red circle" (all instances of it)')
    p.add_argument("--point", type=parse_point, metavar="X,Y", help="foreground point in image pixels")
    p.add_argument("--box", type=parse_box, metavar="X0,Y0,X1,Y1", help="box in image pixels")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="student checkpoint (eager PyTorch)")
    model.add_argument(
        "--pte",
        help="exported ExecuTorch programs: the export directory (text.pte + image.pte) or one of its .pte files",
    )
    p.add_argument("--out", required=True, help="overlay PNG to write")
    p.add_argument("--threshold", type=float, default=0.5, help="instance score threshold (default 0.5, as SAM 3)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.set_defaults(func=run)
