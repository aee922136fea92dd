"""Stage 3 and the embedding cache on a Ray cluster, as a Ray Data pipeline.

    image rows -> EmbedImages (actors; batches; a GPU each when the cluster has them)
               -> GenerateMasks (actors; maskloop's AutomaticMaskGenerator)
               -> streamed back to the driver, which stores each image's masks in the folder's
                  SQLite store exactly as the single-process ``auto`` does (resumable)

Workers read the images by path, so the data folder must be at the same path on every node
(a shared file system), and the project's model versions too when a fine-tuned one is active; they read the embedding cache when it is visible there too, and compute
the embedding otherwise (rounded to float16, as the cache stores it, so the masks are the ones
the single-process run makes). A worker never raises for one bad image: the row comes back
with an ``error`` and the driver reports and skips it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from maskloop.engine.automatic import GeneratorSettings
from maskloop.errors import UserError

if TYPE_CHECKING:
    from maskloop.server.jobs.model import ModelService


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to build the model: it is shipped to every actor (picklable)."""

    model_type: str
    checkpoint: str | None
    device: str  # "cpu" or "cuda"
    precision: str  # "auto", "fp32", "bf16", "fp16"
    model_id: str
    #: The project's model versions folder and the version whose mask decoder generates (``base``: the checkpoint's).
    models_dir: str | None = None
    model_version: str = "base"
    #: Images whose long side is more than this run tile by tile (None: 2x the model's input size).
    tile_threshold: int | None = None

    def service(self, threads: int | None) -> ModelService:
        from maskloop.server.jobs.model import ModelService

        models_root = Path(self.models_dir) if self.models_dir else None
        return ModelService(
            self.model_type, self.checkpoint, self.device, self.precision, Path("."), threads, models_root=models_root
        )


@dataclass
class ImageResult:
    """One image back from the cluster: its masks (generator records) or embedding (fp16 ``.npy``), or an error."""

    image_id: int
    file_name: str
    sha256: str
    masks: list[dict[str, Any]] | None = None
    embedding_npy: bytes | None = None
    error: str | None = None


def _npy(array: npt.NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class EmbedImages:
    """Ray Data actor: a batch of image rows -> their float16 embeddings (``.npy`` bytes) or errors."""

    def __init__(self, spec: ModelSpec, cache_dir: str | None, threads: int, skip_tiled: bool = False) -> None:
        """``skip_tiled``: leave images the generator runs tile by tile without a whole-image embedding
        (its ``embedding`` is empty; ``GenerateMasks`` embeds their tiles)."""
        from maskloop.server.jobs.embeddings import EmbeddingCache
        from maskloop.tiles import Tiling

        self.service = spec.service(threads)
        self.cache = EmbeddingCache(Path(cache_dir), spec.model_id) if cache_dir else None
        self.tiling = Tiling.for_model(self.service.encoder().input_size, spec.tile_threshold) if skip_tiled else None

    def __call__(self, batch: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        from maskloop.exporter.image_file import load_image_rgb
        from maskloop.server.jobs.embeddings import EMBEDDING_SHAPE

        n = len(batch["path"])
        out, errors = [b""] * n, [""] * n
        todo, images = [], []
        widths, heights = batch.get("width", [0] * n), batch.get("height", [0] * n)
        for i, (path, sha) in enumerate(zip(batch["path"], batch["sha256"])):
            if self.tiling is not None and widths[i] and self.tiling.is_tiled(int(widths[i]), int(heights[i])):
                continue  # embedded tile by tile by the generator: never decoded whole here
            cached = self.cache.read(str(sha)) if self.cache else None
            if cached is not None:
                out[i] = cached
                continue
            try:
                images.append(load_image_rgb(path))
                todo.append(i)
            except Exception as exc:  # a bad file must not stop the run: report it
                errors[i] = f"unreadable image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        if images:
            try:
                embeddings = self.service.embed(images)
            except Exception as exc:
                for i in todo:
                    errors[i] = f"the model failed on this image ({exc})"
            else:
                for i, embedding in zip(todo, embeddings):
                    out[i] = _npy(embedding.astype(np.float16).reshape(EMBEDDING_SHAPE))
        return {**batch, "embedding": np.array(out, dtype=object), "error": np.array(errors, dtype=object)}


class GenerateMasks:
    """Ray Data actor: image rows with embeddings -> the generator's records as JSON (or the error passed on)."""

    def __init__(self, spec: ModelSpec, settings: dict[str, Any], threads: int, cache_dir: str | None = None) -> None:
        from maskloop.engine.automatic import AutomaticMaskGenerator
        from maskloop.server.jobs.embeddings import EmbeddingCache
        from maskloop.tiles import Tiling

        self.service = service = spec.service(threads)
        self.generator = AutomaticMaskGenerator(
            service.decoder_model(spec.model_version), service.embedder(), GeneratorSettings(**settings)
        )
        self.tiling = Tiling.for_model(self.generator.input_size, spec.tile_threshold)
        self.cache = EmbeddingCache(Path(cache_dir), spec.model_id) if cache_dir else None

    def _generate(self, path: str, sha256: str, width: int, height: int, data: bytes) -> list[dict[str, Any]]:
        """One image's records: on its whole embedding (``data``), or tile by tile when it is large."""
        from maskloop.exporter.image_file import load_image_rgb
        from maskloop.server.jobs.proposals import embedding_from_npy

        if not (width and height and self.tiling.is_tiled(width, height)):
            return self.generator.generate(load_image_rgb(path), embedding_from_npy(data))
        from maskloop.engine.tiled_auto import generate_tiled
        from maskloop.exporter.regions import read_region
        from maskloop.tiles import Box

        def tile_embedding(region: Box) -> npt.NDArray[np.float32]:
            """The tile's cached embedding when the cache is visible, else computed (rounded to float16, as
            cached) and cached when the cache's folder is visible here."""
            cached = self.cache.read(sha256, region) if self.cache else None
            if cached is not None:
                return embedding_from_npy(cached)
            embedding = self.service.embed([read_region(path, region)])
            if self.cache is not None and self.cache.dir.parent.is_dir():
                return embedding_from_npy(self.cache.write(sha256, embedding, region))
            return embedding.astype(np.float16).astype(np.float32).reshape(1, 256, 64, 64)

        return generate_tiled(
            self.generator, (height, width), self.tiling, lambda region: read_region(path, region), tile_embedding
        )

    def __call__(self, batch: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:

        masks, errors = [], list(batch["error"])
        n = len(batch["path"])
        widths, heights = batch.get("width", [0] * n), batch.get("height", [0] * n)
        for i, (path, data) in enumerate(zip(batch["path"], batch["embedding"])):
            if errors[i]:
                masks.append("")
                continue
            try:
                records = self._generate(str(path), str(batch["sha256"][i]), int(widths[i]), int(heights[i]), data)
                masks.append(json.dumps(records))
            except Exception as exc:
                errors[i] = f"mask generation failed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                masks.append("")
        out = {k: v for k, v in batch.items() if k != "embedding"}  # 2 MiB per image stays on the worker
        return {**out, "masks": np.array(masks, dtype=object), "error": np.array(errors, dtype=object)}


_STARTED_HERE = False  # whether connect() called ray.init (shutdown() undoes only that)


def connect(address: str | None) -> dict[str, float]:
    """Join the Ray cluster at ``address``, or start a local one (None); returns its resources.

    A Ray session the caller already opened (``ray.init``) is used as it is.
    """
    import logging

    global _STARTED_HERE
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'maskloop[ray]' (or pip install 'ray[data]')") from None
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, include_dashboard=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UserError(f"cannot reach a Ray cluster at {address!r}: {str(exc).splitlines()[0]}") from None
        _STARTED_HERE = True
    resources: dict[str, float] = ray.cluster_resources()
    return resources


def run(
    rows: list[dict[str, Any]],
    spec: ModelSpec,
    cache_dir: Path | None,
    settings: GeneratorSettings | None,
    address: str | None,
) -> Iterator[ImageResult]:
    """Embed (and, with ``settings``, generate masks for) ``rows`` on Ray; results stream back as they finish.

    Arguments:
      rows: ``{"image_id", "file_name", "path", "sha256"}`` per image.
      spec: the model every actor builds.
      cache_dir: the server's embeddings folder, read by workers that can see it (None: always compute).
      settings: the generator's settings; None only embeds (``ImageResult.embedding_npy``).
      address: a Ray cluster (``ray start --head`` prints it), or None for a local Ray.
    """
    import ray.data

    if not rows:
        return
    resources = connect(address)
    gpus = int(resources.get("GPU", 0)) if spec.device == "cuda" else 0
    cpus = max(1, int(resources.get("CPU", 1)))
    ray.data.DataContext.get_current().enable_progress_bars = False
    ds: ray.data.Dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), 4 * max(cpus, 1)))
    # One model per actor: on GPUs one embedding actor per GPU (the generator shares it); on CPUs
    # an embedding actor and as many generator actors as the cluster's CPUs allow, a core each.
    embed_actors = max(1, gpus) if gpus else 1
    ds = ds.map_batches(
        EmbedImages,
        fn_constructor_args=(spec, str(cache_dir) if cache_dir else None, 1, settings is not None),
        batch_size=8 if gpus else 1,
        num_gpus=0.5 if gpus else 0,
        num_cpus=1,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=embed_actors),
    )
    if settings is not None:
        gen_actors = max(1, gpus) if gpus else max(1, cpus - 1)
        ds = ds.map_batches(
            GenerateMasks,
            fn_constructor_args=(spec, asdict(settings), 1, str(cache_dir) if cache_dir else None),
            batch_size=1,
            num_gpus=0.5 if gpus else 0,
            num_cpus=1,
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=gen_actors),
        )
    for row in ds.iter_rows():
        error = row["error"] or None
        result = ImageResult(int(row["image_id"]), row["file_name"], row["sha256"], error=error)
        if not error and settings is not None:
            result.masks = json.loads(row["masks"])
        elif not error:
            result.embedding_npy = bytes(row["embedding"])
        yield result


def shutdown() -> None:
    """Leave the cluster if ``connect`` joined it (a local Ray it started stops)."""
    global _STARTED_HERE
    import ray

    if _STARTED_HERE and ray.is_initialized():
        ray.shutdown()
    _STARTED_HERE = False
