"""Fused attention for SAM's ViT image encoders (vit_h / vit_l / vit_b).

Meta's ``Attention.forward`` materialises the full attention matrix in fp32 and adds
the decomposed relative-position terms to it; here the same sum is handed to
``torch.nn.functional.scaled_dot_product_attention`` as an additive bias, which lets
PyTorch pick a fused kernel (memory-efficient attention on CUDA). The maths is
unchanged: ``softmax(q k^T * scale + rel_h + rel_w) v``.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from segment_anything.modeling.image_encoder import Attention


def _fused_forward(self: Attention, x: torch.Tensor) -> torch.Tensor:
    """x: (B, H, W, C) tokens of one window or the whole image -> (B, H, W, C)."""
    from segment_anything.modeling.image_encoder import get_rel_pos

    batch, height, width, _ = x.shape
    heads = self.num_heads
    qkv = self.qkv(x).reshape(batch, height * width, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # each (B, heads, H*W, head_dim)
    bias = None
    if self.use_rel_pos:
        r_q = q.reshape(batch * heads, height, width, -1)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, get_rel_pos(height, height, self.rel_pos_h).to(q.dtype))
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, get_rel_pos(width, width, self.rel_pos_w).to(q.dtype))
        bias = (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(batch, heads, height * width, height * width)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    out = out.view(batch, heads, height, width, -1).permute(0, 2, 3, 1, 4).reshape(batch, height, width, -1)
    projected: torch.Tensor = self.proj(out)
    return projected


def use_fused_attention(model: torch.nn.Module) -> int:
    """Switch every SAM ViT ``Attention`` in ``model`` to the fused forward; returns how many.

    TinyViT (``vit_t``) has its own attention and is left as it is (returns 0 for it).
    """
    from segment_anything.modeling.image_encoder import Attention

    count = 0
    for module in model.modules():
        if isinstance(module, Attention):
            module.forward = types.MethodType(_fused_forward, module)
            count += 1
    return count
