"""A small stand-in with the student's export-program signatures (conv trunk + linear heads), for fast tests."""

from __future__ import annotations

import torch
from torch import nn


class StandInText(nn.Module):
    def __init__(self, vocab: int = 1024, dim: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.proj(self.embed(token_ids))  # [1, L, D]
        return emb, (token_ids != 0).to(emb.dtype)  # [1, L, D], [1, L]


class StandInImage(nn.Module):
    """image [1,3,S,S] + prompt embedding -> mask_logits [1,Q,S/4,S/4], boxes [1,Q,4], scores [1,Q], presence [1]."""

    def __init__(self, dim: int = 64, queries: int = 4) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(32, dim, 3, stride=2, padding=1), nn.ReLU()
        )
        self.prompt = nn.Linear(dim, dim)
        self.queries = nn.Linear(dim, queries * dim)
        self.head = nn.Linear(dim, 5)
        self.presence = nn.Linear(dim, 1)
        self.q, self.d = queries, dim

    def forward(self, image, text_emb, text_valid):
        feat = self.trunk(image)  # [1, D, S/4, S/4]
        pooled = (text_emb * text_valid[..., None]).sum(1) / text_valid.sum(1, keepdim=True).clamp(min=1)  # [1, D]
        p = self.prompt(pooled)  # [1, D]
        q = self.queries(p + feat.mean((2, 3))).reshape(1, self.q, self.d)  # [1, Q, D]
        masks = torch.einsum("bqd,bdhw->bqhw", q, feat) / self.d**0.5  # [1, Q, h, w]
        out = self.head(q)  # [1, Q, 5]
        presence = self.presence(p).sigmoid()[:, 0]  # [1]
        return masks, out[..., :4].sigmoid(), out[..., 4].sigmoid() * presence[:, None], presence


class StandInVideo(nn.Module):
    def __init__(self, image: StandInImage) -> None:
        super().__init__()
        self.image = image
        self.mem = nn.Linear(64, 64)

    def forward(self, frame, text_emb, text_valid, memory_state, memory_valid):
        masks, _, scores, _ = self.image(frame, text_emb + self.mem(memory_state).mean(1, keepdim=True), text_valid)
        return masks, scores, memory_state * 0.5 + self.mem(memory_state) * memory_valid[:, None, None]


def standin_programs(size: int = 32, length: int = 8, seed: int = 0):
    """``{name: (module, example inputs)}`` like ``Student.export_programs()``; plus calibration inputs."""
    torch.manual_seed(seed)
    text, image = StandInText().eval(), StandInImage().eval()
    video = StandInVideo(image).eval()
    ids = torch.randint(1, 1024, (1, length))
    with torch.no_grad():
        emb, valid = text(ids)
    state, state_valid = torch.randn(1, 4, 64), torch.ones(1)
    programs = {
        "text": (text, (ids,)),
        "image": (image, (torch.rand(1, 3, size, size), emb, valid)),
        "video_step": (video, (torch.rand(1, 3, size, size), emb, valid, state, state_valid)),
    }
    g = torch.Generator().manual_seed(seed + 1)
    calibration = {"text": [], "image": [], "video_step": []}
    for _ in range(4):
        ids = torch.randint(1, 1024, (1, length), generator=g)
        with torch.no_grad():
            emb, valid = text(ids)
        img = torch.rand(1, 3, size, size, generator=g)
        calibration["text"].append((ids,))
        calibration["image"].append((img, emb, valid))
        calibration["video_step"].append((img, emb, valid, state, state_valid))
    return programs, calibration
