"""The bootstrap teacher: transformers ``Sam3Model`` at a tiny size, with an initialisation that trains.

HF's default init (normal 0.02) left a tiny Sam3Model at instance mIoU 0.0 on synthetic data; xavier-uniform
weights plus reference boxes spread over the image (all queries start at the same box otherwise) make it learn.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import Sam3Config, Sam3Model

from sam3_edge.teacher.config import TinySam3Params
from sam3_edge.teacher.tokenizer import MAX_TEXT_LEN


def bootstrap_config(params: TinySam3Params, *, image_size: int, vocab_size: int) -> Sam3Config:
    """A Sam3Config of the tiny architecture; the ViT uses global attention (the token grid is small)."""
    if image_size % params.patch_size:
        raise ValueError(f"image_size {image_size} is not a multiple of patch_size {params.patch_size}")
    grid = image_size // params.patch_size
    h, ffn, heads = params.hidden, params.ffn, params.heads
    return Sam3Config(
        vision_config={
            "backbone_config": {
                "model_type": "sam3_vit_model",
                "hidden_size": params.vit_hidden,
                "intermediate_size": params.vit_mlp,
                "num_hidden_layers": params.vit_layers,
                "num_attention_heads": params.vit_heads,
                "image_size": image_size,
                "patch_size": params.patch_size,
                "window_size": 0,
                "global_attn_indexes": list(range(params.vit_layers)),
                "pretrain_image_size": image_size,
            },
            "fpn_hidden_size": h,
            "scale_factors": list(params.scale_factors),
            "backbone_feature_sizes": [[int(grid * s), int(grid * s)] for s in params.scale_factors],
        },
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": params.text_hidden,
            "intermediate_size": 2 * params.text_hidden,
            "projection_dim": params.text_hidden,
            "num_hidden_layers": params.text_layers,
            "num_attention_heads": params.text_heads,
            "max_position_embeddings": MAX_TEXT_LEN,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        geometry_encoder_config={
            "hidden_size": h,
            "num_layers": params.geometry_layers,
            "num_attention_heads": heads,
            "intermediate_size": ffn,
            "dropout": 0.0,
        },
        detr_encoder_config={
            "hidden_size": h,
            "num_layers": params.detr_encoder_layers,
            "num_attention_heads": heads,
            "intermediate_size": ffn,
            "dropout": 0.0,
        },
        detr_decoder_config={
            "hidden_size": h,
            "num_layers": params.detr_decoder_layers,
            "num_attention_heads": heads,
            "intermediate_size": ffn,
            "dropout": 0.0,
            "num_queries": params.num_queries,
        },
        mask_decoder_config={
            "hidden_size": h,
            "num_upsampling_stages": len(params.scale_factors) - 2,
            "num_attention_heads": heads,
        },
    )


def spread_reference_boxes(num_queries: int, *, side: float = 0.25) -> torch.Tensor:
    """Initial reference boxes in inverse-sigmoid space, centres on a grid over the image. -> [Q, 4] cxcywh."""
    cols = math.ceil(math.sqrt(num_queries))
    rows = math.ceil(num_queries / cols)
    idx = torch.arange(num_queries)
    cx = ((idx % cols).float() + 0.5) / cols
    cy = ((idx // cols).float() + 0.5) / rows
    wh = torch.full((num_queries,), side)
    boxes = torch.stack([cx, cy, wh, wh], dim=-1).clamp(1e-3, 1 - 1e-3)
    return torch.log(boxes / (1 - boxes))


@torch.no_grad()
def init_rpb_locality(mlp: nn.Module, strengths: tuple[float, ...]) -> None:
    """Make a box-RPB MLP (``Sam3DecoderMLP(2, hidden, heads, 2)``) put out -k x (distance outside the box).

    Its input per coordinate c is the signed log-scaled pair (c - lo, c - hi) of the query's reference box, so
    relu(-(c - lo)) + relu(c - hi) is how far c lies outside [lo, hi] (0 inside). Hidden units 0 and 1 compute
    these two terms; the output layer weighs them by -k per head. The other hidden units keep their random
    first-layer weights and start with zero output weights, so they can learn further position terms.
    """
    first, last = mlp.layer1, mlp.layer2
    if mlp.layer3 is not None or first.in_features != 2 or first.out_features < 2:
        raise ValueError(f"expected a 2-layer MLP from 2 inputs with >= 2 hidden units, got {mlp}")
    if last.out_features != len(strengths):
        raise ValueError(f"{len(strengths)} locality strengths for {last.out_features} attention heads")
    first.weight[:2] = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
    first.bias[:2] = 0.0
    last.weight.zero_()
    last.weight[:, :2] = -torch.tensor(strengths)[:, None]  # both distance terms, -k per head
    last.bias.zero_()


@torch.no_grad()
def init_bootstrap_weights(model: Sam3Model, *, seed: int, rpb_locality: tuple[float, ...] = ()) -> None:
    """Xavier-uniform linear/conv weights, zero biases, spread reference boxes (deterministic given ``seed``).

    ``rpb_locality``: per-head strengths of a box-locality prior on the decoder's vision cross-attention
    (:func:`init_rpb_locality`); empty keeps the random init.
    """
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(module.weight)
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            module.weight.copy_(torch.rand(module.weight.shape, generator=gen) * 2 * bound - bound)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * 0.02)
    # DAB/DINO-DETR practice: the box head starts at zero, so every query's first box is its spread reference box
    # and a box term in the matching cost assigns each object to the query anchored nearest to it.
    last = model.detr_decoder.box_head.layer3 or model.detr_decoder.box_head.layer2
    last.weight.zero_()
    last.bias.zero_()
    q = model.detr_decoder.reference_points.weight.shape[0]
    model.detr_decoder.reference_points.weight.copy_(spread_reference_boxes(q))
    model.detr_decoder.query_embed.weight.copy_(torch.randn(model.detr_decoder.query_embed.weight.shape, generator=gen))
    if rpb_locality:
        init_rpb_locality(model.detr_decoder.box_rpb_embed_x, rpb_locality)
        init_rpb_locality(model.detr_decoder.box_rpb_embed_y, rpb_locality)


def build_bootstrap_model(params: TinySam3Params, *, image_size: int, vocab_size: int, seed: int) -> Sam3Model:
    model = Sam3Model(bootstrap_config(params, image_size=image_size, vocab_size=vocab_size))
    init_bootstrap_weights(model, seed=seed, rpb_locality=params.rpb_locality)
    return model
