"""SAM's mask decoder for a grid of single-point prompts, with the image-side work done once per image.

The automatic generator asks the decoder the same question thousands of times per image: one
foreground point (plus SAM's padding point), no box, no mask input, three multimask outputs.
On a CPU that pass is nearly all of the stage's time. This module computes exactly the maths of
``MaskDecoder.predict_masks`` + ``TwoWayTransformer`` for that case, rearranged so that far less
of it runs per point:

- Without a mask input the decoder's image side (embedding + no-mask embedding, positional
  encoding) is the same for every point, so block 1's token->image keys/values and image->token
  queries over the 4096 image tokens are projected once per image (``GridDecoder.prepare``).
- Every attention over image tokens that mixes per-point tokens is evaluated in the 7-token
  space instead of projecting 4096 tokens per point: ``q . (W_k x + b_k) = (W_k^T q) . x + q . b_k``
  (the last term is the same for every key, so softmax drops it when the keys are image tokens),
  ``attn (x W_v^T + b_v) = (attn x) W_v^T + b_v`` (attention rows sum to 1), and each head's value
  projection is folded into the output projection. That halves the matmul work over image tokens.
- The two stride-2 transposed convolutions of the upscaling are per-pixel matmuls (channel-last,
  no im2col), and only the embedding cells that cover the image (not its padding) are upscaled.
- Only the outputs the generator reads are computed: the three multimask logits and IoUs.

Results equal the PyTorch decoder's to float rounding (``tests/exporter/test_grid_decoder.py``);
the weights are read from the model passed in, so a fine-tuned decoder decodes with its own. On a
CPU the generator runs this graph exported to ONNX (``exporter/grid_decoder_onnx.py``): onnxruntime
runs it about twice as fast as PyTorch's eager kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from segment_anything.modeling import Sam
    from segment_anything.modeling.transformer import Attention

LOW_RES_PER_CELL = 4  # low-res logit cells per image-embedding cell (256 / 64)


@dataclass
class PreparedImage:
    """The decoder's per-image inputs, computed once (``GridDecoder.prepare``).

    src: [N,C] image tokens (embedding + no-mask embedding), N = 64*64 row-major. The others are
    projections of the image side, split by head, [h,d,N] or [N,h,d]: k1, v1 block 1's
    token->image keys/values and q1 its image->token queries (``src + pe``); pe_k2, pe_q2, pe_kf the
    positional encoding's share of block 2's and the final attention's projections (no bias).
    rows, cols: the embedding cells to upscale (those over the image, plus one for bilinear reads).
    """

    src: torch.Tensor
    k1: torch.Tensor
    v1: torch.Tensor
    q1: torch.Tensor
    pe_k2: torch.Tensor
    pe_q2: torch.Tensor
    pe_kf: torch.Tensor
    rows: int
    cols: int


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[..., T, heads*d] -> [..., T, heads, d]."""
    split: torch.Tensor = x.unflatten(-1, (heads, x.shape[-1] // heads))
    return split


class GridDecoder:
    """Decode batches of single foreground points on one prepared image.

    Arguments:
      model: a SAM model; its ``prompt_encoder`` and ``mask_decoder`` (two-way transformer of
        depth 2, as in every SAM and MobileSAM checkpoint) are read, never modified.
    """

    @torch.no_grad()
    def __init__(self, model: Sam) -> None:
        self.prompt_encoder = model.prompt_encoder
        self.decoder = model.mask_decoder
        transformer = self.decoder.transformer
        if len(transformer.layers) != 2 or not transformer.layers[0].skip_first_layer_pe:
            raise ValueError("GridDecoder expects SAM's two-way transformer of depth 2")
        self.blocks = transformer.layers
        self.heads = transformer.num_heads
        self.upscaler = TokenUpscaler(self.decoder)

    @torch.inference_mode()
    def prepare(self, embedding: torch.Tensor, input_hw: tuple[int, int]) -> PreparedImage:
        """embedding [1,C,64,64] of an image whose model input is ``input_hw`` (long side 1024) -> PreparedImage."""
        h = self.heads
        pe = self.prompt_encoder.get_dense_pe().flatten(2)[0].T  # [N,C]
        src = (embedding[0].flatten(1).T + self.prompt_encoder.no_mask_embed.weight).contiguous()
        first, second = self.blocks
        t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token

        # The low-res cells (4 model-input pixels each) over the image plus one (bilinear upsampling
        # reads it), in embedding cells.
        low_rows, low_cols = (math.ceil(n / 4) + 1 for n in input_hw)
        side = int(math.isqrt(src.shape[0]))
        return PreparedImage(
            src=src,
            k1=heads_last(t2i.k_proj(src + pe), h),
            v1=_heads(t2i.v_proj(src), h).transpose(0, 1).contiguous(),
            q1=heads_last(i2t.q_proj(src + pe), h),
            pe_k2=pe_share(pe, second.cross_attn_token_to_image.k_proj, h),
            pe_q2=pe_share(pe, second.cross_attn_image_to_token.q_proj, h),
            pe_kf=pe_share(pe, self.decoder.transformer.final_attn_token_to_image.k_proj, h),
            rows=min(side, math.ceil(low_rows / LOW_RES_PER_CELL)),
            cols=min(side, math.ceil(low_cols / LOW_RES_PER_CELL)),
        )

    @torch.inference_mode()
    def __call__(self, image: PreparedImage, points_model: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points [B,2] (XY, model-input frame) -> low-res logits [B,3,4*rows,4*cols], predicted IoU [B,3].

        The logits are the top-left part of SAM's [B,3,256,256] (the cells over the image, plus one).
        """
        return self.decode(image, self.prompt_tokens(points_model))

    def prompt_tokens(self, points_model: torch.Tensor) -> torch.Tensor:
        """Points [B,2] (XY, model-input frame) -> SAM's sparse prompt embeddings [B,2,C] (the point, padding)."""
        labels = torch.ones(len(points_model), 1, dtype=torch.int, device=points_model.device)
        sparse: torch.Tensor = self.prompt_encoder(points=(points_model[:, None, :], labels), boxes=None, masks=None)[0]
        return sparse

    def decode(self, image: PreparedImage, sparse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse prompt embeddings [B,2,C] -> low-res logits [B,3,4*rows,4*cols], predicted IoU [B,3]."""
        output_tokens = torch.cat([self.decoder.iou_token.weight, self.decoder.mask_tokens.weight])
        tokens = torch.cat([output_tokens.expand(sparse.shape[0], -1, -1), sparse], dim=1)  # [B,T,C]
        queries, keys = self.first_block(image, tokens)
        queries, keys = self.second_block(image, queries, keys, tokens)
        # The final attention's tokens attend independently: only the IoU token and the 3 multimask tokens are read.
        read = [0, 2, 3, 4]
        queries, tokens = queries[:, read], tokens[:, read]
        final = self.decoder.transformer
        attention = final.final_attn_token_to_image
        queries = final.norm_final_attn(
            queries + token_to_image(attention, self.heads, queries + tokens, keys, image.pe_kf)
        )
        iou = self.decoder.iou_prediction_head(queries[:, 0])[:, 1:]
        hyper = torch.stack(
            [self.decoder.output_hypernetworks_mlps[i](queries[:, i]) for i in range(1, 4)], dim=1
        )  # [B,3,C/8]
        return self.upscaler(keys, hyper, image.rows, image.cols), iou

    def first_block(self, image: PreparedImage, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Block 1 (no PE on its self-attention); its image-side projections come from ``prepare``."""
        block = self.blocks[0]
        queries = block.norm1(block.self_attn(q=tokens, k=tokens, v=tokens))
        t2i = block.cross_attn_token_to_image
        queries = block.norm2(queries + projected_token_to_image(t2i, self.heads, queries + tokens, image.k1, image.v1))
        queries = block.norm3(queries + block.mlp(queries))
        i2t = block.cross_attn_image_to_token
        keys = image_to_token(i2t, self.heads, None, image.src, queries + tokens, queries, image.q1)
        return queries, block.norm4(keys)

    def second_block(
        self, image: PreparedImage, queries: torch.Tensor, keys: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        block = self.blocks[1]
        q = queries + tokens
        queries = block.norm1(queries + block.self_attn(q=q, k=q, v=queries))
        t2i, i2t = block.cross_attn_token_to_image, block.cross_attn_image_to_token
        queries = block.norm2(queries + token_to_image(t2i, self.heads, queries + tokens, keys, image.pe_k2))
        queries = block.norm3(queries + block.mlp(queries))
        keys = image_to_token(i2t, self.heads, keys, keys, queries + tokens, queries, image.pe_q2)
        return queries, block.norm4(keys)


def heads_last(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Projected image tokens [N, heads*d] -> [heads, d, N] (the layout the attention helpers take)."""
    return _heads(x, heads).permute(1, 2, 0).contiguous()


def pe_share(pe: torch.Tensor, linear: torch.nn.Linear, heads: int) -> torch.Tensor:
    """The positional encoding pe [N,C]'s share of ``linear``'s projection (no bias), split by head -> [h,d,N]."""
    return heads_last(pe @ linear.weight.T, heads)


def projected_token_to_image(
    attention: Attention, h: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """``attention(q, ., .)`` with the image side projected already: tokens q [B,T,C] attend to
    keys k [h,d,N] and values v [h,N,d] (shared by the batch) -> [B,T,C]."""
    t = q.shape[1]
    head_dim = attention.internal_dim // h
    qh = _heads(attention.q_proj(q), h).permute(2, 0, 1, 3).reshape(h, -1, head_dim)  # [h,B*T,d]
    attn = torch.softmax(torch.bmm(qh / math.sqrt(head_dim), k), dim=-1)  # [h,B*T,N]
    out = torch.bmm(attn, v).reshape(h, -1, t, head_dim).permute(1, 2, 0, 3).flatten(2)
    projected: torch.Tensor = attention.out_proj(out)
    return projected


def token_to_image(
    attention: Attention, h: int, q: torch.Tensor, keys: torch.Tensor, pe_k: torch.Tensor
) -> torch.Tensor:
    """``attention(q, keys + pe, keys)``: tokens q [B,T,C] attend to per-point image tokens keys [B,N,C] -> [B,T,C].

    The key and value projections are applied on the token side (see the module docstring);
    ``pe_k`` [h,d,N] is the positional encoding's share of the keys (``pe_share``); h heads.
    """
    t = q.shape[1]
    head_dim = attention.internal_dim // h
    qh = _heads(attention.q_proj(q), h) / math.sqrt(head_dim)  # [B,T,h,d]
    w_k = attention.k_proj.weight.unflatten(0, (h, head_dim))  # [h,d,C]
    q_in = torch.einsum("bthd,hdc->bthc", qh, w_k).flatten(1, 2)  # [B,T*h,C]
    pe_logits = torch.einsum("bthd,hdn->bthn", qh, pe_k).flatten(1, 2)  # [B,T*h,N]
    attn = torch.softmax(torch.baddbmm(pe_logits, q_in, keys.transpose(1, 2)), dim=-1)
    mixed = torch.bmm(attn, keys).unflatten(1, (t, h))  # [B,T,h,C]
    w_v = attention.v_proj.weight.unflatten(0, (h, head_dim))  # [h,d,C]
    out = torch.einsum("bthc,hdc->bthd", mixed, w_v).flatten(2) + attention.v_proj.bias
    projected: torch.Tensor = attention.out_proj(out)
    return projected


def image_to_token(
    attention: Attention,
    h: int,
    image_q: torch.Tensor | None,
    residual: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    pe_q: torch.Tensor,
) -> torch.Tensor:
    """``residual + attention(image_q + pe, k, v)``: image tokens attend to tokens k, v [B,T,C] -> [B,N,C].

    image_q: per-point image tokens [B,N,C], or None in block 1 where ``pe_q`` [h,d,N] holds the
    whole projected query; otherwise ``pe_q`` is the positional encoding's share. The query
    projection goes to the token side; each head's value projection is folded into the output's.
    """
    t = k.shape[1]
    head_dim = attention.internal_dim // h
    kh = _heads(attention.k_proj(k), h) / math.sqrt(head_dim)  # [B,T,h,d]
    logits = torch.einsum("bthd,hdn->bhtn", kh, pe_q).flatten(1, 2)  # [B,h*T,N]
    if image_q is not None:
        w_q = attention.q_proj.weight.unflatten(0, (h, head_dim))  # [h,d,C]
        k_in = torch.einsum("bthd,hdc->bhtc", kh, w_q).flatten(1, 2)  # [B,h*T,C]
        bias = torch.einsum("bthd,hd->bht", kh, attention.q_proj.bias.unflatten(0, (h, head_dim))).flatten(1)
        logits = torch.baddbmm(logits + bias[:, :, None], k_in, image_q.transpose(1, 2))
    attn = torch.softmax(logits.unflatten(1, (h, t)), dim=2).flatten(1, 2)  # [B,h*T,N]
    vh = _heads(attention.v_proj(v), h)  # [B,T,h,d]
    w_out = attention.out_proj.weight.unflatten(1, (h, head_dim))  # [C,h,d]
    # Each image token's attention sums to 1 per head, so the bias spread over the h heads' rows adds it once.
    v_out = torch.einsum("bthd,chd->bhtc", vh, w_out).flatten(1, 2) + attention.out_proj.bias / h  # [B,h*T,C]
    return torch.baddbmm(residual, attn.transpose(1, 2), v_out)


class TokenUpscaler:
    """SAM's ``output_upscaling`` + hypernetwork product on image tokens, channel-last.

    The two ConvTranspose2d(kernel 2, stride 2) layers are per-token linear maps to the 4
    sub-pixels, LayerNorm2d a layer norm over the last axis; the sub-pixels are put in place only
    in the masks (a few channels) rather than in the 64- and 32-channel features.
    """

    @torch.no_grad()
    def __init__(self, decoder: torch.nn.Module) -> None:
        up: Any = decoder.output_upscaling  # Sequential(ConvTranspose2d, LayerNorm2d, GELU, ConvTranspose2d, GELU)
        conv1, norm, conv2 = up[0], up[1], up[3]
        # ConvTranspose2d(kernel 2, stride 2) as a linear map to the 4 sub-pixels: weight [in,out,2,2] -> [2*2*out, in].
        self.up1_w = conv1.weight.permute(0, 2, 3, 1).flatten(1).T.contiguous()
        self.up1_b = conv1.bias.repeat(4)
        self.up1_out = conv1.weight.shape[1]
        self.norm = norm
        self.up2_w = conv2.weight.permute(0, 2, 3, 1).flatten(1).T.contiguous()
        self.up2_b = conv2.bias.repeat(4)
        self.up2_out = conv2.weight.shape[1]

    def __call__(self, keys: torch.Tensor, hyper: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        """Image tokens keys [B,N,C] (N = side*side, row-major), hypernetwork outputs hyper [B,M,C/8]
        -> mask logits [B,M,4*rows,4*cols] of the top-left rows x cols embedding cells."""
        side = int(math.isqrt(keys.shape[1]))
        r, c, m = rows, cols, hyper.shape[1]
        x = keys if (r, c) == (side, side) else keys.unflatten(1, (side, side))[:, :r, :c]
        x = x.reshape(-1, keys.shape[2])  # [B*r*c,C]
        x = F.linear(x, self.up1_w, self.up1_b).unflatten(-1, (4, self.up1_out))  # [B*r*c,2*2,C/4]
        x = F.gelu(F.layer_norm(x, (self.up1_out,), self.norm.weight, self.norm.bias, self.norm.eps))
        x = F.gelu(F.linear(x, self.up2_w, self.up2_b))  # [B*r*c,2*2,2*2*C/8]
        masks = torch.bmm(x.reshape(hyper.shape[0], -1, self.up2_out), hyper.transpose(1, 2))  # [B,r*c*16,M]
        # (i, j, dy1, dx1, dy2, dx2) -> row 4i + 2 dy1 + dy2, column 4j + 2 dx1 + dx2.
        masks = masks.reshape(-1, r, c, 2, 2, 2, 2, m).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return masks.reshape(-1, m, 4 * r, 4 * c)
