"""int8 quantisation of an exported decoder graph (onnxruntime's dynamic quantisation)."""

from __future__ import annotations

import logging
from pathlib import Path


def quantize_file(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation (onnxruntime) of the two-way transformer's MLP weights, per channel.

    Only the MLP MatMuls are quantised: quantising the point positional encoding
    (coords @ gaussian matrix, then sin/cos) flips masks outright, and the attention
    projections drop the mean candidate IoU to ~0.93 on real embeddings, below the
    0.97 this project accepts (measured with ``verify_decoder``; see bench/RESULTS.md).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    mlp_nodes = [
        n.name for n in graph.node if n.op_type == "MatMul" and "/transformer/" in n.name and "/mlp/" in n.name
    ]
    logging.disable(logging.WARNING)  # onnxruntime suggests its pre-processing script on every call
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QUInt8,
            nodes_to_quantize=mlp_nodes,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        logging.disable(logging.NOTSET)
