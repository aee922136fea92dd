"""Data-engine sub-commands: ``evaluate``, ``boxes-to-masks`` (and, with the server's store, ``propose``/``auto``/``stats``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from maskloop.errors import UserError

DECODERS = ("torch", "onnx", "onnx-int8")


def register(subparsers: argparse._SubParsersAction) -> None:
    from maskloop.exporter.commands import add_model_arguments

    ev = subparsers.add_parser("evaluate", help="simulated interactive segmentation on a COCO ground truth (mIoU@k, NoC@85/90, box mIoU)")
    ev.add_argument("--coco", type=Path, required=True, help="COCO ground truth with polygons or RLE")
    ev.add_argument("--images", type=Path, required=True, help="folder the COCO file_names are relative to")
    ev.add_argument("--max-clicks", type=int, default=20, help="clicks per object (default: %(default)s)")
    ev.add_argument("--decoder", choices=DECODERS, default="torch",
                    help="torch: PyTorch decoder on fp32 embeddings; onnx / onnx-int8: the browser's exported decoder on fp16 embeddings")
    ev.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_model_arguments(ev)
    ev.set_defaults(func=cmd_evaluate)

    bx = subparsers.add_parser("boxes-to-masks", help="turn every box of a COCO detection file into a mask (box prompt)")
    bx.add_argument("--coco", type=Path, required=True, help="COCO file whose annotations have bbox")
    bx.add_argument("--data", type=Path, required=True, help="folder the COCO file_names are relative to")
    bx.add_argument("--out", type=Path, required=True, help="COCO file to write, with RLE masks")
    bx.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    add_model_arguments(bx)
    bx.set_defaults(func=cmd_boxes_to_masks)


class EngineContext:
    """The model, embedder and decoder a command needs, built once."""

    def __init__(self, args: argparse.Namespace, decoder_kind: str = "torch") -> None:
        from maskloop.engine.predictors import make_decoder
        from maskloop.exporter.embedding import ImageEmbedder, resolve_device
        from maskloop.exporter.registry import load_sam

        device = resolve_device(args.device)
        self.model = load_sam(args.model_type, args.checkpoint, device=device)
        precision = "bf16" if device == "cuda" and args.model_type != "vit_t" else "fp32"
        self.embedder = ImageEmbedder(self.model, device=device, precision=precision)
        self.fp16_embeddings = decoder_kind != "torch"
        export_dir = None
        if decoder_kind != "torch":
            from maskloop.exporter.onnx_export import ensure_decoder
            from maskloop.paths import cache_dir

            export_dir = cache_dir() / "decoders" / args.model_type
            ensure_decoder(args.model_type, args.checkpoint, export_dir, model=self.model)
        self.decoder = make_decoder(decoder_kind, self.model, export_dir)

    def embed(self, path: Path):
        """(embedding [1,256,64,64] float32, (H, W)) of an image file, as the page would get it."""
        import numpy as np

        from maskloop.exporter.embedding import load_image_rgb

        image = load_image_rgb(path)
        embedding = self.embedder.embed([image])
        if self.fp16_embeddings:  # what the server sends the browser
            embedding = embedding.astype(np.float16).astype(np.float32)
        return embedding, image.shape[:2]


def _progress(desc: str):
    from tqdm import tqdm

    return lambda it: tqdm(list(it), desc=desc, unit="image", file=sys.stderr, disable=None)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from maskloop.engine.dataset import iter_ground_truth, load_coco
    from maskloop.engine.evaluate import evaluate

    if args.max_clicks < 1:
        raise UserError("--max-clicks must be at least 1")
    coco = load_coco(args.coco)
    if not args.images.is_dir():
        raise UserError(f"--images folder not found: {args.images}")
    ctx = EngineContext(args, args.decoder)
    samples = ((ctx.embed(gt.path)[0], gt.masks) for gt in iter_ground_truth(coco, args.images))
    summary = evaluate(samples, ctx.decoder, args.max_clicks, progress=_progress("evaluate")).summary()
    summary["decoder"] = args.decoder
    summary["model_type"] = args.model_type
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"objects: {summary['objects']}   decoder: {args.decoder}   model: {args.model_type}")
    for k in (1, 2, 3, 5, 10, 20):
        if k <= len(summary["miou_at_clicks"]):
            print(f"mIoU after {k:2d} click{'s' if k > 1 else ' '}: {summary['miou_at_clicks'][k - 1]:.4f}")
    print(f"NoC@85: {summary['noc85']}   NoC@90: {summary['noc90']}   box mIoU: {summary['box_miou']}")
    return 0


def cmd_boxes_to_masks(args: argparse.Namespace) -> int:
    from maskloop.engine.boxes import boxes_to_masks
    from maskloop.engine.dataset import load_coco

    coco = load_coco(args.coco)
    for i, ann in enumerate(coco.dataset["annotations"]):
        box = ann.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and box[2] > 0 and box[3] > 0):
            raise UserError(f"annotation {i} (id {ann.get('id')}) has no usable bbox [x, y, w, h]: {box!r}")
    ctx = EngineContext(args)
    out = boxes_to_masks(coco.dataset, args.data, ctx.decoder, ctx.embed, progress=_progress("boxes-to-masks"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out))
    print(f"wrote {len(out['annotations'])} masks to {args.out}")
    return 0
