"""Self-describing training checkpoints in ONE safetensors file (no pickle anywhere).

Tensors: ``model/<name>`` (model state), ``optim/<i>/<name>`` (optimizer per-param state), ``extra/<name>``
(stage-owned modules such as phase-1 adapters), ``rng/torch``. The safetensors string metadata holds
``format_version, model_config, step, epoch, params_hash, stage`` and json for optimizer param groups,
scalar optimizer state, numpy/python RNG. Loading is strict: a missing field or an unknown format version is an
error naming the file, and :func:`sam3_edge.models.load_student` rebuilds the model from ``model_config`` alone.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open

from sam3_edge.utils import atomic_path, save_safetensors

FORMAT_VERSION = 1
_REQUIRED = ("format_version", "model_config", "step", "epoch", "params_hash", "stage")


@dataclass
class Checkpoint:
    model_config: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    step: int
    epoch: int
    params_hash: str
    stage: str
    optimizer_state: dict[str, Any] | None = None
    rng_state: dict[str, Any] = field(default_factory=dict)
    extra_state: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def capture_rng_state() -> dict[str, Any]:
    """torch CPU generator, numpy legacy global and python ``random`` states."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": json.loads(json.dumps(random.getstate())),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "numpy" in state:
        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))


def _split_optimizer(opt_state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in opt_state["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim/{pid}/{name}"] = value.detach().contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def save_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    model_config: dict[str, Any],
    step: int,
    epoch: int,
    params_hash: str,
    stage: str,
    optimizer: torch.optim.Optimizer | None = None,
    rng_state: dict[str, Any] | None = None,
    extra_state: dict[str, torch.Tensor] | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Atomically write a checkpoint (a crash never leaves a partial file under ``path``)."""
    tensors = {f"model/{k}": v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {
        "format_version": str(FORMAT_VERSION),
        "model_config": json.dumps(model_config, sort_keys=True),
        "step": str(step),
        "epoch": str(epoch),
        "params_hash": params_hash,
        "stage": stage,
        "meta": json.dumps(meta or {}, sort_keys=True),
    }
    if optimizer is not None:
        opt_tensors, opt_meta = _split_optimizer(optimizer.state_dict())
        tensors.update(opt_tensors)
        metadata["optimizer"] = json.dumps(opt_meta)
    if rng_state is not None:
        tensors["rng/torch"] = rng_state["torch"].clone()
        metadata["rng"] = json.dumps({k: v for k, v in rng_state.items() if k != "torch"})
    for k, v in (extra_state or {}).items():
        tensors[f"extra/{k}"] = v.detach().contiguous().clone()
    path = Path(path)
    with atomic_path(path) as tmp:
        save_safetensors(tensors, tmp, metadata=metadata)  # byte-reproducible header


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; errors name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as err:  # safetensors raises its own error types for truncated/corrupt files
        raise ValueError(f"{path}: not a readable safetensors checkpoint ({err})") from None
    missing = [k for k in _REQUIRED if k not in metadata]
    if missing:
        raise ValueError(f"{path}: checkpoint metadata lacks {missing}")
    if int(metadata["format_version"]) != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format_version {metadata['format_version']} != {FORMAT_VERSION}")
    model_state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    extra = {k[len("extra/") :]: v for k, v in tensors.items() if k.startswith("extra/")}
    optimizer_state = None
    if "optimizer" in metadata:
        opt_meta = json.loads(metadata["optimizer"])
        state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optim/"):
                _, pid, name = k.split("/", 2)
                state.setdefault(int(pid), {})[name] = v
        for pid, entry in opt_meta["scalars"].items():
            state.setdefault(int(pid), {}).update(entry)
        optimizer_state = {"state": state, "param_groups": opt_meta["param_groups"]}
    rng: dict[str, Any] = {}
    if "rng/torch" in tensors:
        rng = {"torch": tensors["rng/torch"], **json.loads(metadata.get("rng", "{}"))}
    meta = json.loads(metadata.get("meta", "{}"))
    meta.update(
        format_version=int(metadata["format_version"]),
        step=int(metadata["step"]),
        epoch=int(metadata["epoch"]),
        params_hash=metadata["params_hash"],
        stage=metadata["stage"],
    )
    return Checkpoint(
        model_config=json.loads(metadata["model_config"]),
        model_state=model_state,
        step=int(metadata["step"]),
        epoch=int(metadata["epoch"]),
        params_hash=metadata["params_hash"],
        stage=metadata["stage"],
        optimizer_state=optimizer_state,
        rng_state=rng,
        extra_state=extra,
        meta=meta,
    )
