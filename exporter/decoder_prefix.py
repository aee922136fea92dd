"""SAM's decoder split in two ONNX graphs: a per-image prefix and a per-prompt graph.

What depends only on the image runs once per opened image (``decoder_prefix.onnx``): the
embedding plus the no-mask dense embedding, flattened to tokens, the first two-way block's
image-side projections (token->image keys and values, image->token queries), and the positional
encoding's share of the second block's and the final attention's projections. The per-prompt
graph (``decoder_prompt.onnx``) takes those and the prompt.

The per-prompt graph evaluates every attention over the 4096 image tokens on the 7-token side, as
the automatic generator's ``GridDecoder`` does (its blocks run here; see exporter/grid_decoder.py):
no 4096 x 256 x 128 projection runs per prompt, and the upscaling runs channel-last as matmuls
(``TokenUpscaler``). Only the IoU and mask tokens go through the final attention.

A fed-back mask changes the image side only through the mask branch's last 1x1 conv
(256 x 16): ``src = image_tokens + has_mask * (W3 h + b3 - no_mask)``, where ``h`` [16, 4096] are
the mask branch's features. The projections are linear, so ``P(src) = P(image_tokens) +
has_mask * ((P W3) h + P (b3 - no_mask))``: the prompt graph adds a rank-16 correction
([4096,16] x [16,128]) instead of projecting 4096 x 256 tokens again, with or without a mask.
The masks are SAM's (verified against PyTorch like the single graph); only float rounding differs.

Inputs and outputs (batch 1, N = 64x64 image tokens, C = 256, h = 8 heads of d = 16 for SAM):
  prefix: ``image_embeddings`` [1,C,64,64] -> ``image_tokens`` [N,C] float32,
    ``t2i_keys`` [h,d,N], ``t2i_values`` [h,N,d], ``i2t_queries`` [h,d,N] (block 1's projections),
    ``pe_keys_2``, ``pe_queries_2``, ``pe_keys_final`` [h,d,N] (the positional encoding's share of
    block 2's token->image keys, image->token queries and the final keys, no bias). The positional
    encoding is computed in the graph rather than stored (4 MB less to download).
  prompt: those seven + ``point_coords`` [1,P,2] (1024 frame), ``point_labels`` [1,P],
    ``mask_input`` [1,1,256,256], ``has_mask_input`` [1] -> ``iou_predictions`` [1,4],
    ``low_res_masks`` [1,4,256,256] (as the single ``lowres`` graph).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from maskloop.exporter.decoder_cache import PREFIX_FORMAT, PROMPT_OPTIMIZED

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

from maskloop.digest import sha256_file
from maskloop.exporter.decoder_graph import HARMLESS_EXPORT_WARNINGS
from maskloop.exporter.grid_decoder import GridDecoder, PreparedImage, heads_last, pe_share, token_to_image
from maskloop.exporter.model_lock import onnx_export
from maskloop.exporter.verify import ReferenceCase, case_shapes, reference_cases
from maskloop.masks import mask_iou

PREFIX_FILE = "decoder_prefix.onnx"
PROMPT_FILE = "decoder_prompt.onnx"
PREFIX_INPUTS = ["image_embeddings"]
PREFIX_OUTPUTS = [
    "image_tokens",
    "t2i_keys",
    "t2i_values",
    "i2t_queries",
    "pe_keys_2",
    "pe_queries_2",
    "pe_keys_final",
]
PROMPT_INPUTS = [*PREFIX_OUTPUTS, "point_coords", "point_labels", "mask_input", "has_mask_input"]
PROMPT_OUTPUTS = ["iou_predictions", "low_res_masks"]
# PROMPT_OPTIMIZED (the level the prompt graph is saved at) and PREFIX_FORMAT (the layout of the
# prefix's outputs) live in exporter/decoder_cache.py, which checks an export without torch.


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """[B,C,H,W] -> [B,H*W,C], the transformer's token layout."""
    return x.flatten(2).permute(0, 2, 1)


class DecoderPrefix(nn.Module):
    """The per-image part: image tokens (embedding + no-mask embedding), block 1's image-side
    projections and the positional encoding's share of block 2's and the final attention's."""

    no_mask: torch.Tensor  # buffers, registered in __init__

    def __init__(self, model: Sam, embedding_dtype: str = "float16") -> None:
        super().__init__()
        self.embedding_dtype = embedding_dtype
        encoder = model.prompt_encoder
        self.register_buffer("no_mask", encoder.no_mask_embed.weight.detach().reshape(1, 1, -1))
        self.pe_layer = encoder.pe_layer
        self.grid = tuple(encoder.image_embedding_size)
        self.transformer = model.mask_decoder.transformer
        self.heads = self.transformer.num_heads

    def forward(self, image_embeddings: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """[1,C,64,64] embedding -> the seven ``PREFIX_OUTPUTS`` (module docstring)."""
        h = self.heads
        first, second = self.transformer.layers
        src = _tokens(image_embeddings.float())[0] + self.no_mask[0]  # [N,C]
        pe = _tokens(self.pe_layer(self.grid).unsqueeze(0))[0]  # [N,C]
        with_pe = src + pe
        t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
        return (
            src,
            heads_last(t2i.k_proj(with_pe), h),
            t2i.v_proj(src).unflatten(-1, (h, -1)).transpose(0, 1),  # [h,N,d]
            heads_last(i2t.q_proj(with_pe), h),
            pe_share(pe, second.cross_attn_token_to_image.k_proj, h),
            pe_share(pe, second.cross_attn_image_to_token.q_proj, h),
            pe_share(pe, self.transformer.final_attn_token_to_image.k_proj, h),
        )


class DecoderPrompt(nn.Module):
    """The per-prompt part: SAM's ``predict_masks`` on the prefix's outputs (all 4 candidates),
    its attention over image tokens evaluated on the token side (``GridDecoder``'s blocks).

    Arguments:
      upscaling: ``"tokens"`` (``TokenUpscaler``: channel-last matmuls) or ``"convtranspose"``
        (SAM's ``output_upscaling`` on the [1,C,64,64] grid); the same maths, timed by
        ``bench/bench_decoder_graphs.py``.
    """

    # buffers, registered in __init__
    w3: torch.Tensor
    c3: torch.Tensor
    t2i_k_w: torch.Tensor
    t2i_k_c: torch.Tensor
    t2i_v_w: torch.Tensor
    t2i_v_c: torch.Tensor
    i2t_q_w: torch.Tensor
    i2t_q_c: torch.Tensor

    def __init__(self, model: Sam, upscaling: str = "tokens") -> None:
        super().__init__()
        from segment_anything.utils.onnx import SamOnnxModel

        if upscaling not in ("tokens", "convtranspose"):
            raise ValueError(f"unknown upscaling {upscaling!r}")
        self.upscaling = upscaling
        self.sam_onnx = SamOnnxModel(model, return_single_mask=False)
        encoder, decoder = model.prompt_encoder, model.mask_decoder
        self.decoder = decoder
        self.blocks = GridDecoder(model)
        self.upscaler = self.blocks.upscaler
        self.mask_features = encoder.mask_downscaling[:-1]  # -> h [1,16,64,64]
        last = encoder.mask_downscaling[-1]  # the 1x1 conv 16 -> 256
        w3 = last.weight.detach()[:, :, 0, 0]  # [256,16]
        c3 = last.bias.detach() - encoder.no_mask_embed.weight.detach()[0]  # [256]
        self.grid = tuple(encoder.image_embedding_size)
        self.register_buffer("w3", w3.t().contiguous())  # [16,256]
        self.register_buffer("c3", c3)
        layer0 = decoder.transformer.layers[0]
        heads = decoder.transformer.num_heads
        # The fed-back mask's correction of block 1's projections, in the prefix's layouts.
        for name, linear in (
            ("t2i_k", layer0.cross_attn_token_to_image.k_proj),
            ("t2i_v", layer0.cross_attn_token_to_image.v_proj),
            ("i2t_q", layer0.cross_attn_image_to_token.q_proj),
        ):
            weight = linear.weight.detach()  # [D,256]
            w, c = (weight @ w3).unflatten(0, (heads, -1)), (weight @ c3).unflatten(0, (heads, -1))  # [h,d,16], [h,d]
            if name == "t2i_v":  # [h,N,d] = h^T [N,16] @ [h,16,d]
                self.register_buffer(f"{name}_w", w.transpose(1, 2).contiguous())
                self.register_buffer(f"{name}_c", c.unsqueeze(1))
            else:  # [h,d,N] = [h,d,16] @ h [16,N]
                self.register_buffer(f"{name}_w", w.contiguous())
                self.register_buffer(f"{name}_c", c.unsqueeze(2))

    def forward(
        self,
        image_tokens: torch.Tensor,
        t2i_keys: torch.Tensor,
        t2i_values: torch.Tensor,
        i2t_queries: torch.Tensor,
        pe_keys_2: torch.Tensor,
        pe_queries_2: torch.Tensor,
        pe_keys_final: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The prefix's seven outputs and SAM's prompt inputs (``PROMPT_INPUTS``) ->
        (iou_predictions [1,4], low_res_masks [1,4,256,256])."""
        decoder = self.decoder
        feat = self.mask_features(mask_input).flatten(2)[0]  # [16,N]
        image = PreparedImage(
            src=image_tokens + has_mask_input * (feat.t() @ self.w3 + self.c3),
            k1=t2i_keys + has_mask_input * (self.t2i_k_w @ feat + self.t2i_k_c),
            v1=t2i_values + has_mask_input * (feat.t() @ self.t2i_v_w + self.t2i_v_c),
            q1=i2t_queries + has_mask_input * (self.i2t_q_w @ feat + self.i2t_q_c),
            pe_k2=pe_keys_2,
            pe_q2=pe_queries_2,
            pe_kf=pe_keys_final,
            rows=self.grid[0],
            cols=self.grid[1],
        )
        sparse = self.sam_onnx._embed_points(point_coords, point_labels)
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0).unsqueeze(0)
        tokens = torch.cat((output_tokens, sparse), dim=1)  # [1,T,C]
        queries, keys = self.blocks.first_block(image, tokens)
        queries, keys = self.blocks.second_block(image, queries, keys, tokens)
        # The final attention's tokens attend independently: only the IoU and mask tokens' are read.
        read = 1 + decoder.num_mask_tokens
        queries, tokens = queries[:, :read], tokens[:, :read]
        transformer = decoder.transformer
        attention = transformer.final_attn_token_to_image
        heads = transformer.num_heads
        hs = transformer.norm_final_attn(
            queries + token_to_image(attention, heads, queries + tokens, keys, pe_keys_final)
        )

        # SAM's predict_masks from here on.
        mask_tokens_out = hs[:, 1 : (1 + decoder.num_mask_tokens), :]
        hyper_in = torch.stack(
            [decoder.output_hypernetworks_mlps[i](mask_tokens_out[:, i, :]) for i in range(decoder.num_mask_tokens)],
            dim=1,
        )  # [1,4,C/8]
        if self.upscaling == "tokens":
            masks = self.upscaler(keys, hyper_in, *self.grid)
        else:
            upscaled = decoder.output_upscaling(keys.transpose(1, 2).reshape(1, -1, *self.grid))
            b, c, h2, w2 = upscaled.shape
            masks = (hyper_in @ upscaled.view(b, c, h2 * w2)).view(b, -1, h2, w2)
        return decoder.iou_prediction_head(hs[:, 0, :]), masks


def export_prefix_pair(
    model: Sam, out_dir: Path, *, opset: int = 17, embedding_dtype: str = "float16", upscaling: str = "tokens"
) -> tuple[Path, Path]:
    """Trace ``decoder_prefix.onnx`` and ``decoder_prompt.onnx`` into ``out_dir``."""
    model = model.cpu().eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix, prompt = DecoderPrefix(model, embedding_dtype), DecoderPrompt(model, upscaling)
    embed_dim = model.prompt_encoder.embed_dim
    grid = model.prompt_encoder.image_embedding_size
    emb = torch.randn(1, embed_dim, *grid, dtype=torch.float16 if embedding_dtype == "float16" else torch.float32)
    with torch.no_grad():
        prefix_out = prefix(emb)
    prompt_dummy = (
        *prefix_out,
        torch.randint(0, 1024, (1, 5, 2), dtype=torch.float),
        torch.randint(0, 4, (1, 5), dtype=torch.float),
        torch.randn(1, 1, 4 * grid[0], 4 * grid[1], dtype=torch.float),
        torch.tensor([1], dtype=torch.float),
    )
    paths = (out_dir / PREFIX_FILE, out_dir / PROMPT_FILE)
    with warnings.catch_warnings():
        for harmless in HARMLESS_EXPORT_WARNINGS:
            warnings.filterwarnings("ignore", **harmless)
        onnx_export(
            prefix,
            (emb,),
            str(paths[0]),
            opset_version=opset,
            do_constant_folding=False,  # else the positional encoding becomes a 4 MB constant
            input_names=PREFIX_INPUTS,
            output_names=PREFIX_OUTPUTS,
            dynamo=False,
        )
        onnx_export(
            prompt,
            prompt_dummy,
            str(paths[1]),
            opset_version=opset,
            do_constant_folding=True,
            input_names=PROMPT_INPUTS,
            output_names=PROMPT_OUTPUTS,
            dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
            dynamo=False,
        )
    optimize_graph(paths[1])
    return paths


def optimize_graph(path: Path) -> None:
    """Rewrite the ONNX graph at ``path`` as onnxruntime's CPU provider optimises it at the
    ``PROMPT_OPTIMIZED`` level (constant folding, fused Gelu / LayerNormalization / MatMul+Add...),
    the same maths: what onnxruntime-web would otherwise do on every session creation."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    optimized = path.with_suffix(".optimized.onnx")
    options.optimized_model_filepath = str(optimized)
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    optimized.replace(path)


@dataclass
class PrefixVerifyReport:
    """The two graphs run in turn (onnxruntime) against PyTorch's ``SamOnnxModel``, all 4 candidates."""

    cases: int
    max_low_res_diff: float
    mean_iou: float
    min_iou: float
    image_sizes: list[list[int]]

    def as_dict(self) -> dict:
        return asdict(self)


def verify_prefix_pair(
    model: Sam,
    prefix_path: Path,
    prompt_path: Path,
    embedding: np.ndarray | None = None,
    shapes: list[tuple[int, int]] | None = None,
    *,
    embedding_dtype: str = "float16",
    n_cases: int = 24,
    seed: int = 0,
    reference: list[ReferenceCase] | None = None,
) -> PrefixVerifyReport:
    """Random prompts (points, boxes, each with and without a fed-back mask) drawn for images of
    (H, W) ``shapes`` in turn, through prefix + prompt graph and through PyTorch.

    Arguments:
      embedding: [1,256,64,64] float32 image embedding (a real image's, ideally).
      reference: PyTorch's answers computed already (``reference_cases``: an export's, shared with
        its single graphs); drawn here from ``embedding``, ``shapes``, ``n_cases`` and ``seed`` if None.
    """
    import onnxruntime as ort

    if reference is None:
        if embedding is None or shapes is None:
            raise ValueError("verify_prefix_pair needs an embedding and shapes, or a reference")
        reference = reference_cases(
            model, embedding, shapes, embedding_dtype=embedding_dtype, n_cases=n_cases, seed=seed
        )
    prefix = ort.InferenceSession(str(prefix_path), providers=["CPUExecutionProvider"])
    prompt = ort.InferenceSession(str(prompt_path), providers=["CPUExecutionProvider"])
    threshold = float(model.mask_threshold)
    # every case carries the same embedding: the prefix runs once
    image_side = dict(
        zip(PREFIX_OUTPUTS, prefix.run(None, {"image_embeddings": reference[0].feeds["image_embeddings"]}))
    )
    diffs: list[float] = []
    ious: list[float] = []
    for case in reference:
        feeds = {**image_side, **{k: case.feeds[k] for k in PROMPT_INPUTS[len(PREFIX_OUTPUTS) :]}}
        _, low = prompt.run(None, feeds)
        ref = case.low_res
        diffs.append(float(np.abs(low - ref).max()))
        ious.extend(mask_iou(low[0, j] > threshold, ref[0, j] > threshold) for j in range(low.shape[1]))
    return PrefixVerifyReport(
        cases=len(reference),
        max_low_res_diff=max(diffs),
        mean_iou=float(np.mean(ious)),
        min_iou=float(np.min(ious)),
        image_sizes=case_shapes(reference),
    )


def prefix_manifest_entry(prefix_path: Path, prompt_path: Path, report: PrefixVerifyReport | None) -> dict:
    """The manifest's ``prefix`` entry: both files (name, sha256, bytes), their inputs/outputs, verification."""
    entry = {
        "prefix": {
            "file": prefix_path.name,
            "sha256": sha256_file(prefix_path),
            "bytes": prefix_path.stat().st_size,
            "inputs": PREFIX_INPUTS,
            "outputs": PREFIX_OUTPUTS,
        },
        "prompt": {
            "file": prompt_path.name,
            "sha256": sha256_file(prompt_path),
            "bytes": prompt_path.stat().st_size,
            "inputs": PROMPT_INPUTS,
            "outputs": PROMPT_OUTPUTS,
            "optimized": PROMPT_OPTIMIZED,
        },
        "format": PREFIX_FORMAT,
    }
    if report is not None:
        entry["verify"] = report.as_dict()
    return entry
