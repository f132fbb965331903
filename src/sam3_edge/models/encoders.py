"""Student encoders: RepViT image trunk + FPN (timm), open_clip text tower + projection, point/box prompts.

Pretrained weights come only from local files named in params; without one a part logs that it starts from
random init. Nothing is downloaded (``pretrained=False`` / timm's ``pretrained_cfg_overlay={"file": ...}``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import TextTransformer
from torch import nn

from sam3_edge.models.layers import sine_coord_embedding

LOG = logging.getLogger(__name__)

# ImageNet statistics used by the timm RepViT weights.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pretrained weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    return state


class ImageEncoder(nn.Module):
    """timm RepViT (``features_only``, strides 4/8/16/32) + top-down FPN to a common width ``dim``.

    forward: image [B, 3, S, S] in [0, 1] -> 4 maps [B, dim, S/4, S/4] ... [B, dim, S/32, S/32].
    """

    def __init__(
        self,
        *,
        backbone: str,
        dim: int,
        embed_dim: tuple[int, ...] | None = None,
        depth: tuple[int, ...] | None = None,
        weights: str | None = None,
    ) -> None:
        super().__init__()
        kwargs: dict = {}
        if embed_dim is not None:
            kwargs.update(embed_dim=tuple(embed_dim), depth=tuple(depth or ()))
        self.trunk = timm.create_model(backbone, pretrained=False, features_only=True, **kwargs)
        if weights:
            self._load(weights)
            LOG.info("image encoder %s: loaded pretrained weights from %s", backbone, weights)
        else:
            LOG.info("image encoder %s: no pretrained weights named in params, starting from random init", backbone)
        chans = self.trunk.feature_info.channels()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in chans)
        self.smooth = nn.ModuleList(nn.Conv2d(dim, dim, 3, padding=1) for _ in chans)

    def _load(self, weights: str) -> None:
        """Strictly load a timm RepViT checkpoint (classifier keys ``stages.N.*`` or features_only ``stages_N.*``)."""
        state = _load_state_dict(weights)
        own = self.trunk.state_dict()
        mapped = {re.sub(r"^stages\.(\d+)\.", r"stages_\1.", k): v for k, v in state.items()}
        picked = {k: v for k, v in mapped.items() if k in own}
        missing = sorted(set(own) - set(picked))
        if missing:
            raise ValueError(f"{weights}: RepViT weights lack {missing[:5]} (and {max(0, len(missing) - 5)} more)")
        self.trunk.load_state_dict(picked, strict=True)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - self.mean) / self.std  # [B, 3, S, S]
        feats = self.trunk(x)  # 4 x [B, C_i, S/2^(i+2), ...]
        lat = [conv(f) for conv, f in zip(self.lateral, feats, strict=True)]
        out = [lat[-1]]
        for f in reversed(lat[:-1]):
            up = F.interpolate(out[0], size=f.shape[-2:], mode="nearest")
            out.insert(0, f + up)
        return [conv(f) for conv, f in zip(self.smooth, out, strict=True)]

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold RepViT's multi-branch blocks and BatchNorms into single convs (timm ``fuse`` of each block)."""

        def fuse_children(net: nn.Module) -> None:
            for name, child in net.named_children():
                if hasattr(child, "fuse"):
                    fused = child.fuse()
                    setattr(net, name, fused)
                    fuse_children(fused)
                else:
                    fuse_children(child)

        fuse_children(self.trunk)


class TextEncoder(nn.Module):
    """open_clip ``TextTransformer`` (bidirectional, as MobileCLIP's text tower) + linear projection to ``dim``.

    forward: token ids [B, L] int64 -> (tokens [B, L, dim], valid [B, L] bool, id 0 = padding).
    """

    def __init__(
        self,
        *,
        dim: int,
        width: int,
        heads: int,
        layers: int,
        mlp_ratio: float,
        context_length: int,
        vocab_size: int,
        weights: str | None = None,
    ) -> None:
        super().__init__()
        self.tower = TextTransformer(
            context_length=context_length,
            vocab_size=vocab_size,
            width=width,
            heads=heads,
            layers=layers,
            mlp_ratio=mlp_ratio,
            output_dim=None,
            proj_type="none",
            no_causal_mask=True,
            output_tokens=True,
        )
        if weights:
            self._load(weights)
        else:
            LOG.info("text encoder (open_clip, %d layers x %d): no pretrained weights, random init", layers, width)
        self.proj = nn.Linear(width, dim)

    def _load(self, weights: str) -> None:
        state = _load_state_dict(weights)
        prefix = "text." if any(k.startswith("text.") for k in state) else ""
        own = self.tower.state_dict()
        picked = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and k[len(prefix) :] in own}
        if "positional_embedding" in picked:  # a shorter context keeps the first positions
            picked["positional_embedding"] = picked["positional_embedding"][: own["positional_embedding"].shape[0]]
        missing = sorted(set(own) - set(picked))
        if missing:
            raise ValueError(f"{weights}: text tower weights lack {missing[:5]} (and {max(0, len(missing) - 5)} more)")
        self.tower.load_state_dict(picked, strict=True)
        LOG.info("text encoder: loaded %d tensors from %s", len(picked), weights)

    def forward(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, tokens = self.tower(token_ids)  # [B, L, width]
        return self.proj(tokens), token_ids != 0  # [B, L, dim], [B, L]


class PromptEncoder(nn.Module):
    """Point and box prompts -> tokens with SAM-style random Fourier position features.

    points: [B, P, 3] (x, y, label) in pixels, label 1 = fg, 0 = bg, -1 = unused slot;
    box: [B, 4] xyxy pixels; box_valid: [B] 1.0 when the prompt has a box.
    Returns tokens [B, P + 2, dim] and valid [B, P + 2] bool.
    """

    def __init__(self, *, dim: int, image_size: int) -> None:
        super().__init__()
        self.image_size = image_size
        self.register_buffer("gaussian", torch.randn(2, dim // 2))
        self.label_embed = nn.Embedding(3, dim)  # pad, background, foreground
        self.corner_embed = nn.Embedding(2, dim)  # box top-left, bottom-right

    def _pe(self, xy: torch.Tensor) -> torch.Tensor:
        coords = 2 * (xy / self.image_size) - 1  # [..., 2] in [-1, 1]
        proj = 2 * torch.pi * coords @ self.gaussian  # [..., dim/2]
        return torch.cat([proj.sin(), proj.cos()], dim=-1)  # [..., dim]

    def forward(
        self, points: torch.Tensor, box: torch.Tensor, box_valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        labels = points[..., 2].round().long().clamp(-1, 1)  # [B, P]
        valid_pts = labels >= 0
        pt_tok = self._pe(points[..., :2]) + self.label_embed(labels + 1)  # [B, P, dim]
        pt_tok = pt_tok * valid_pts[..., None]
        corners = box.view(-1, 2, 2)  # [B, 2, 2]
        box_tok = self._pe(corners) + self.corner_embed.weight[None]  # [B, 2, dim]
        valid_box = (box_valid > 0.5)[:, None].expand(-1, 2)  # [B, 2]
        box_tok = box_tok * valid_box[..., None]
        return torch.cat([pt_tok, box_tok], dim=1), torch.cat([valid_pts, valid_box], dim=1)


def box_position_features(boxes: torch.Tensor, dim: int) -> torch.Tensor:
    """boxes [..., 4] normalised cxcywh -> sine features [..., dim]."""
    return sine_coord_embedding(boxes, dim)


def build_tokenizer(context_length: int) -> SimpleTokenizer:
    """open_clip's BPE tokenizer; its vocabulary ships inside the package, so this works offline."""
    return SimpleTokenizer(context_length=context_length)
