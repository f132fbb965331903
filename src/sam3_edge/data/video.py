"""mp4 reading and writing through PyAV (SA-V ships h264; synthetic clips are bit-exact MPEG-4 Part 2); decode failures become :class:`DataError`."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from sam3_edge.data.errors import DataError
from sam3_edge.utils import atomic_path


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int  # frames actually decoded (or counted from packets when not decoding)
    fps: float
    width: int
    height: int


def write_video(path: str | Path, frames: np.ndarray, *, fps: int = 24, qscale: int = 1) -> None:
    """Atomically write ``np.uint8 [T, H, W, 3]`` RGB frames as an mp4 (yuv420p, H and W even).

    The bytes are a pure function of ``frames``: FFmpeg's own MPEG-4 Part 2 encoder in bit-exact mode, one thread.
    SA-V ships h264, but libx264 is not reproducible here: the same 24 frames encoded 8 times in one process gave
    3-4 different files (also with its x264-params threads=1:lookahead-threads=1 and numpy-converted yuv420p
    input), so a fresh clone never matched the committed ``data/synthetic`` hash. Readers decode either codec
    through PyAV; the real SA-V h264 clips go through the same reader.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 [T, H, W, 3] frames, got {frames.dtype} {frames.shape}")
    _, height, width, _ = frames.shape
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4", options={"fflags": "+bitexact"}) as container:
            stream = container.add_stream("mpeg4", rate=Fraction(fps, 1))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.thread_count = 1
            # constant quantiser (ffmpeg's -q:v): global_quality is in lambda units, FF_QP2LAMBDA = 118 per step
            # integer forward DCT (FFmpeg's C islow): "auto" may pick a per-CPU SIMD transform on another machine
            stream.options = {"flags": "+bitexact+qscale", "global_quality": str(118 * qscale), "dct": "int"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def _open(path: str | Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), mode="r")
    except FileNotFoundError:
        raise DataError(path, "missing_file", "video not found") from None
    except (av.FFmpegError, OSError, ValueError) as err:
        raise DataError(path, "bad_video", f"not a readable video: {err}") from None
    if not container.streams.video:
        container.close()
        raise DataError(path, "bad_video", "no video stream")
    return container


def probe_video(path: str | Path, *, decode: bool = True) -> VideoInfo:
    """Frame count, fps and size; ``decode=True`` decodes every frame so a corrupt stream is caught here."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        width, height = stream.codec_context.width, stream.codec_context.height
        if decode:
            count = sum(1 for _ in container.decode(stream))
        else:
            count = sum(1 for packet in container.demux(stream) if packet.size)
    except (av.FFmpegError, OSError, ValueError) as err:
        raise DataError(path, "bad_video", f"video does not decode: {err}") from None
    finally:
        container.close()
    if count == 0:
        raise DataError(path, "bad_video", "video has no decodable frame")
    return VideoInfo(num_frames=count, fps=fps, width=width, height=height)


def read_video_frames(path: str | Path, *, frame_indices: list[int] | None = None) -> np.ndarray:
    """Decode an mp4 into ``np.uint8 [T, H, W, 3]`` RGB (all frames, or only ``frame_indices`` in order)."""
    container = _open(path)
    wanted = None if frame_indices is None else set(frame_indices)
    frames: dict[int, np.ndarray] = {}
    try:
        for index, frame in enumerate(container.decode(container.streams.video[0])):
            if wanted is None or index in wanted:
                frames[index] = frame.to_ndarray(format="rgb24")
            if wanted is not None and len(frames) == len(wanted):
                break
    except (av.FFmpegError, OSError, ValueError) as err:
        raise DataError(path, "bad_video", f"video does not decode: {err}") from None
    finally:
        container.close()
    order = sorted(frames) if frame_indices is None else list(frame_indices)
    missing = [i for i in order if i not in frames]
    if missing or not order:
        raise DataError(path, "bad_video", f"frames {missing[:5] or 'all'} not in the video")
    return np.stack([frames[i] for i in order])
