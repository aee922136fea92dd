"""What the data-engine commands build from their arguments: the model and decoder (``EngineContext``),
or a project folder's store, model service and embedding cache (``StoreContext``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from maskloop.errors import UserError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from maskloop.engine.generator_settings import GeneratorSettings
    from maskloop.engine.learn import AnnotatedImage
    from maskloop.server.jobs.distributed import ImageResult
    from maskloop.server.jobs.proposals import MaskStage
    from maskloop.server.store.db import Row

_T = TypeVar("_T")

#: Decoders ``evaluate`` can run: PyTorch on fp32 embeddings, or the browser's ONNX export on fp16 ones.
DECODERS = ("torch", "onnx", "onnx-int8")


class EngineContext:
    """The model, embedder and decoder a command needs, built once."""

    def __init__(self, args: argparse.Namespace, decoder_kind: str = "torch") -> None:
        from maskloop.engine.predictors import make_decoder
        from maskloop.exporter.embedding import ImageEmbedder, resolve_device, resolve_precision
        from maskloop.exporter.registry import load_sam

        device = resolve_device(args.device)
        model_type, checkpoint = args.model_type, args.checkpoint
        self.model_version = "base"
        project = getattr(args, "data", None) if hasattr(args, "model_version") else None
        if project is not None:  # a project's model: its checkpoint, and one of its versions' decoder
            from maskloop.engine.versions import ModelVersions
            from maskloop.server.jobs.project import open_store

            store = open_store(project, None, scan=False, progress=False, db=getattr(args, "db", None))
            model_type, checkpoint = store.config["MODEL_TYPE"], store.config["CHECKPOINT"]
            versions = ModelVersions(store.config["MODELS_DIR"])
            store.close()
            self.model_version = versions.resolve(args.model_version or "active")
        elif getattr(args, "model_version", None):
            raise UserError("--model-version needs --data (the project whose versions it names)")
        self.model_type = model_type
        self.model = load_sam(model_type, checkpoint, device=device)
        self.embedder = ImageEmbedder(
            self.model, device=device, precision=resolve_precision("auto", model_type, device)
        )
        self.fp16_embeddings = decoder_kind != "torch"
        export_dir = None
        if project is not None and self.model_version != "base":
            from maskloop.engine.versions import with_mask_decoder

            self.model = with_mask_decoder(self.model, versions.decoder_state(self.model_version)).eval()
            if decoder_kind != "torch":
                export_dir = versions.onnx_dir(self.model_version)
        elif decoder_kind != "torch":
            from maskloop.exporter.onnx_export import ensure_decoder
            from maskloop.exporter.registry import checkpoint_sha256, model_id
            from maskloop.paths import onnx_cache_dir

            sha = checkpoint_sha256(model_type, checkpoint)
            export_dir = onnx_cache_dir() / model_id(model_type, sha)  # the servers' shared export
            ensure_decoder(model_type, checkpoint, export_dir, model=self.model, checkpoint_sha=sha)
        self.decoder = make_decoder(decoder_kind, self.model, export_dir)

    def embed(self, path: Path) -> tuple[npt.NDArray[np.float32], tuple[int, int]]:
        """(embedding [1,256,64,64] float32, (H, W)) of an image file, as the page would get it."""

        from maskloop.exporter.embedding import load_image_rgb

        image = load_image_rgb(path)
        height, width = image.shape[:2]
        return self.embed_pixels(image), (height, width)

    def embed_pixels(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """The embedding [1,256,64,64] float32 of HxWx3 uint8 RGB pixels (an image, or a region of one)."""
        import numpy as np

        embedding: npt.NDArray[np.float32] = self.embedder.embed([image])
        if self.fp16_embeddings:  # what the server sends the browser
            embedding = embedding.astype(np.float16).astype(np.float32)
        return embedding


class Progress(Protocol):
    """A progress bar around an iterable (``total``: its length when it has none)."""

    def __call__(self, it: Iterable[_T], total: int | None = None) -> Iterable[_T]: ...


def progress_bar(desc: str) -> Progress:
    """A tqdm bar on stderr (off when stderr is not a terminal) counting images."""
    from tqdm import tqdm

    return lambda it, total=None: tqdm(
        it if total is not None else list(it), total=total, desc=desc, unit="image", file=sys.stderr, disable=None
    )


class StoreContext:
    """A folder's store, the model the server would use for it, and its embedding cache."""

    def __init__(self, args: argparse.Namespace, load_model: bool = True) -> None:
        from maskloop.engine.versions import ModelVersions
        from maskloop.server.jobs.project import open_store

        self.store = open_store(args.data, args.workdir, scan=True, progress=False, db=getattr(args, "db", None))
        self.versions = ModelVersions(self.store.config["MODELS_DIR"])
        if load_model:
            self.load_model(args)

    def load_model(self, args: argparse.Namespace) -> None:
        """The folder's model service and embedding cache (the weights load on first use)."""
        from maskloop.server.jobs.embeddings import EmbeddingService
        from maskloop.server.jobs.model import ModelService

        cfg = self.store.config
        self.device_request = getattr(args, "device", None) or cfg["DEVICE"]
        self.model = ModelService.from_config(cfg, device=self.device_request)
        # No worker thread is started: a missing embedding is computed in this thread and cached.
        self.embeddings = EmbeddingService(self.model, Path(cfg["EMBEDDINGS_DIR"]))

    def embedding_of(self, row: Row | Mapping[str, Any], path: Path) -> npt.NDArray[np.float32]:
        """The image's embedding from the server's cache, computed and cached if absent."""
        from maskloop.server.jobs.embeddings import EmbeddingError
        from maskloop.server.jobs.proposals import embedding_from_npy

        try:
            return embedding_from_npy(self.embeddings.get(row["sha256"], path, int(row["id"])))
        except EmbeddingError as exc:
            raise UserError(str(exc)) from None

    def region_embedding_of(
        self, row: Row | Mapping[str, Any], path: Path, region: tuple[int, int, int, int]
    ) -> npt.NDArray[np.float32]:
        """A region's (a tile's: x0, y0, x1, y1 image pixels) embedding [1,256,64,64] float32 from the
        server's cache (``<sha256>@x0_y0_x1_y1``), computed and cached if absent."""
        from maskloop.server.jobs.embeddings import EmbeddingError
        from maskloop.server.jobs.proposals import embedding_from_npy

        try:
            return embedding_from_npy(self.embeddings.get_region(row["sha256"], path, int(row["id"]), region))
        except EmbeddingError as exc:
            raise UserError(str(exc)) from None

    def tile_threshold(self) -> int | None:
        """The folder's ``TILE_THRESHOLD`` (None: 2x the model's input size)."""
        value = self.store.config.get("TILE_THRESHOLD")
        return int(value) if value else None

    def annotated_embedding(self, image: AnnotatedImage) -> npt.NDArray[np.float32]:
        """``embedding_of`` for ``engine.learn``: an ``AnnotatedImage``'s cached embedding (float32)."""
        return self.embedding_of({"sha256": image.sha256, "id": image.image_id}, self.store.data_dir / image.file_name)

    @staticmethod
    def settings(args: argparse.Namespace) -> GeneratorSettings:
        import math

        from maskloop.engine.generator_settings import GeneratorSettings

        if not 1 <= args.points_per_side <= 256:
            raise UserError(f"--points-per-side must be from 1 to 256 (SAM uses 32), got {args.points_per_side}")
        if not 0 <= args.crop_layers <= 4:
            raise UserError(f"--crop-layers must be from 0 to 4, got {args.crop_layers}")
        for flag, value in (("--pred-iou-thresh", args.pred_iou_thresh), ("--stability-thresh", args.stability_thresh)):
            if not math.isfinite(value):
                raise UserError(f"{flag} must be a finite number, got {value}")
        if not 0 <= args.min_region_area <= 2**31:
            raise UserError(f"--min-region-area must be from 0 to 2^31 pixels, got {args.min_region_area}")
        return GeneratorSettings(
            points_per_side=args.points_per_side,
            crop_n_layers=args.crop_layers,
            pred_iou_thresh=args.pred_iou_thresh,
            stability_score_thresh=args.stability_thresh,
            min_mask_region_area=args.min_region_area,
        )

    def stage(self, settings: GeneratorSettings, stage: str, status: str, version: str | None = None) -> MaskStage:
        from maskloop.server.jobs.proposals import MaskStage
        from maskloop.tiles import Tiling

        version = version or self.model.active_version()
        generator = self.model.generator(settings, version)
        tiling = Tiling.for_model(generator.input_size, self.tile_threshold())
        return MaskStage(generator, self.model.model_id, stage, status, model_version=version, tiling=tiling)

    def report_unusable(self) -> None:
        """One stderr line per image file the scan found unusable (they are skipped)."""
        from maskloop.server.store.images import list_images

        for row in list_images(self.store.conn):
            if row["error"] and not row["missing"]:
                print(f"skipped {row['file_name']}: {row['error']}", file=sys.stderr)

    def on_ray(self, rows: list[Row], address: str, settings: GeneratorSettings | None) -> Iterator[ImageResult]:
        """``engine.distributed.run`` for these image rows; ``address`` "local" starts a local Ray. Leaves Ray at the end."""
        from maskloop.server.jobs import distributed

        ray_address = None if address == "local" else address  # None: a local Ray for this run
        resources = distributed.connect(ray_address)
        device = self.device_request
        if device == "auto":  # the workers', not this machine's
            device = "cuda" if resources.get("GPU", 0) else "cpu"
        spec = distributed.ModelSpec(
            self.model.model_type,
            self.model.checkpoint,
            device,
            self.model.precision,
            self.model.model_id,
            models_dir=str(self.versions.root),
            model_version=self.model.active_version(),
            tile_threshold=self.tile_threshold(),
        )
        items = [
            {
                "image_id": int(r["id"]),
                "file_name": r["file_name"],
                "path": str(self.store.data_dir / r["file_name"]),
                "sha256": r["sha256"],
                "width": int(r["width"] or 0),
                "height": int(r["height"] or 0),
            }
            for r in rows
        ]
        cache_root = self.embeddings.cache.dir.parent
        # Workers write to the cache only where they see its folder (the same file system): make it
        # here first, or a folder whose images are all tiled (no whole-image embedding) never gets one.
        cache_root.mkdir(parents=True, exist_ok=True)
        try:
            yield from distributed.run(items, spec, cache_root, settings, ray_address)
        finally:
            distributed.shutdown()

    def usable_images(self, selectors: list[str] | None = None) -> list[Row]:
        from maskloop.server.store.images import list_images

        rows = [r for r in list_images(self.store.conn) if not r["error"] and not r["missing"]]
        if not selectors:
            return rows
        chosen = []
        for sel in selectors:
            match = [r for r in rows if str(r["id"]) == sel or r["file_name"] == sel]
            if not match:
                raise UserError(f"no usable image {sel!r} in {self.store.data_dir} (give an id or a file name)")
            chosen += match
        return chosen

    def category(self, name: str) -> int:
        from maskloop.server.store.categories import ensure_category
        from maskloop.server.store.db import transaction

        with transaction(self.store.conn):
            return ensure_category(self.store.conn, name)
