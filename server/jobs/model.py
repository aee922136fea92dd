"""The active SAM model: loaded once per process, shared by requests and the embedding worker.

The model is identified by ``model_id`` = ``<model_type>-<first 12 hex of the checkpoint sha256>``;
embeddings and the exported decoder are stored under that id, so switching checkpoints never
serves a stale embedding. The base decoder's export lives in ``ONNX_DIR/<model_id>/``, by default
the user's cache (``cache_dir()/onnx``), shared by every folder and made once per model
(``maskloop model prepare``, or the first server on that model).

Fine-tuned *versions* of the mask decoder (``engine/versions.py``) share the base model's image
encoder, so they share its embeddings; the active version decides which decoder the page, the
proposals and ``auto`` use. It is read from ``models/active.json`` on every call, so a version
activated by another process (``maskloop models use``, a training run) takes effect at once.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from maskloop.exporter.model_lock import MODEL_LOCK
from maskloop.prompt import Prompt

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

    from maskloop.engine.automatic import AutomaticMaskGenerator
    from maskloop.engine.generator_settings import GeneratorSettings
    from maskloop.exporter.decoder_runtime import OnnxDecoder
    from maskloop.exporter.embedding import ImageEmbedder
    from maskloop.exporter.onnx_encoder import OnnxEncoder

#: Loading a model and exporting one to ONNX: one process-wide re-entrant lock (``model_lock``).
_SHARED_LOCK = MODEL_LOCK
#: (model_type, checkpoint, device, precision, compile) -> ImageEmbedder; one model instance per process.
_SHARED_EMBEDDERS: dict[tuple[str, str | None, str, str, bool], ImageEmbedder] = {}
_SHA_CACHE: dict[tuple[str, str | None], str] = {}


def cpu_threads() -> int:
    """CPUs this process may run on (cgroup/affinity aware, unlike ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def prepare_in_child(model_type: str, checkpoint: str | Path | None, onnx_root: Path) -> None:
    """Export the base decoder of ``model_type`` / ``checkpoint`` into ``onnx_root/<model_id>/`` with
    ``maskloop model prepare`` in a child process (which waits for another process exporting the
    same model). Its failure is not raised here: the caller then exports in-process, which reports
    the error."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "maskloop.cli", "model", "prepare", "--model-type", model_type]
    if checkpoint is not None:
        command += ["--checkpoint", str(checkpoint)]
    env = dict(os.environ, MASKLOOP_ONNX_DIR=str(onnx_root))
    subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)


class ModelService:
    """Loads the model on first use; ``embed`` runs one batch at a time (a lock guards the model).

    Arguments:
      model_type: registry name (``vit_t``, ``vit_b``, ``vit_l``, ``vit_h``).
      checkpoint: weights file, or None for the default ``vit_t``.
      device: ``auto``, ``cpu`` or ``cuda``.
      precision: ``auto`` (``exporter.embedding.resolve_precision``: bf16 for the ViTs on CUDA,
        else fp32), ``fp32``, or ``fp16``/``bf16`` on CUDA.
      onnx_root: folder holding ``<model_id>/`` with the exported base decoder (``ONNX_DIR``: shared
        by every folder, ``cache_dir()/onnx`` by default).
      torch_threads: CPU threads for torch (None: every CPU this process may use).
      compile: ``torch.compile`` the encoder when it runs on CUDA.
      models_root: the project's model versions folder (``WORKDIR/models``).
    """

    def __init__(
        self,
        model_type: str,
        checkpoint: str | Path | None,
        device: str,
        precision: str,
        onnx_root: Path,
        torch_threads: int | None = None,
        compile: bool = False,
        models_root: Path | None = None,
    ) -> None:
        from maskloop.engine.versions import ModelVersions

        self.model_type = model_type
        self.checkpoint = str(checkpoint) if checkpoint else None
        self.device_request = device
        self.precision = precision
        self.onnx_root = onnx_root
        self.torch_threads = torch_threads
        self.compile = compile and self.device_request != "cpu"
        self.lock = threading.Lock()
        self._init_lock = threading.Lock()
        self._model_id: str | None = None
        self._manifest: dict[str, Any] | None = None
        self.versions = ModelVersions(models_root or onnx_root.parent / "models")
        self._version_manifests: dict[str, dict[str, Any]] = {}
        self._version_models: dict[str, Sam] = {}
        self._native_decoders: dict[str, OnnxDecoder] = {}
        self._encoder: ImageEmbedder | OnnxEncoder | None = None
        self._generator_lock = threading.Lock()
        #: (version, settings as a tuple) -> AutomaticMaskGenerator; ``generators_built`` counts constructions.
        self._generators: dict[tuple[str, tuple[Any, ...]], AutomaticMaskGenerator] = {}
        self.generators_built = 0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], device: str | None = None, compile: bool = False) -> ModelService:
        """The model a project's configuration names (``app.config`` or ``open_store(...).config``).

        ``device`` overrides the configured ``DEVICE``; ``compile`` is the server's ``COMPILE``.
        """
        return cls(
            cfg["MODEL_TYPE"],
            cfg["CHECKPOINT"],
            device or cfg["DEVICE"],
            cfg["PRECISION"],
            Path(cfg["ONNX_DIR"]),
            cfg["TORCH_THREADS"],
            compile=compile,
            models_root=Path(cfg["MODELS_DIR"]),
        )

    @property
    def checkpoint_sha256(self) -> str:
        """sha256 of the checkpoint file; hashing it happens once per process."""
        from maskloop.exporter.registry import checkpoint_sha256

        key = (self.model_type, self.checkpoint)
        known = _SHA_CACHE.get(key)
        if known is not None:  # without the lock: an export elsewhere must not stall this
            return known
        with _SHARED_LOCK:
            if key not in _SHA_CACHE:
                _SHA_CACHE[key] = checkpoint_sha256(self.model_type, self.checkpoint)
            return _SHA_CACHE[key]

    @property
    def model_id(self) -> str:
        """``<model_type>-<sha12>``."""
        if self._model_id is None:
            from maskloop.exporter.registry import model_id

            self._model_id = model_id(self.model_type, self.checkpoint_sha256)
        return self._model_id

    @property
    def device(self) -> str:
        from maskloop.exporter.embedding import resolve_device

        return resolve_device(self.device_request)

    def resolved_precision(self, device: str) -> str:
        from maskloop.exporter.embedding import resolve_precision

        return resolve_precision(self.precision, self.model_type, device)

    def embedder(self) -> ImageEmbedder:
        """The process's ``ImageEmbedder`` for this model (built on first call)."""
        device = self.device
        precision = self.resolved_precision(device)
        key = (self.model_type, self.checkpoint, device, precision, self.compile)
        loaded = _SHARED_EMBEDDERS.get(key)
        if loaded is not None:  # without the lock: a training run's export must not stall embeddings
            return loaded
        with _SHARED_LOCK:
            if key not in _SHARED_EMBEDDERS:
                import torch

                from maskloop.exporter.embedding import ImageEmbedder
                from maskloop.exporter.registry import load_sam

                if device == "cpu":
                    torch.set_num_threads(self.torch_threads or cpu_threads())
                model = load_sam(self.model_type, self.checkpoint, device=device)
                embedder = ImageEmbedder(
                    model, device=device, precision=precision, compile=self.compile and device == "cuda"
                )
                if embedder.onnx_path is not None:
                    from maskloop.exporter.onnx_encoder import remember

                    remember(self.checkpoint_sha256, embedder.onnx_path)
                _SHARED_EMBEDDERS[key] = embedder
            return _SHARED_EMBEDDERS[key]

    def encoder(self) -> ImageEmbedder | OnnxEncoder:
        """What embeds images, chosen on the first call: on a machine without a GPU, the encoder's
        exported ONNX graph on onnxruntime alone when this checkpoint's was exported here
        (``exporter/onnx_encoder.py``: no PyTorch import, ~550 MiB less resident), else
        ``embedder()``. Both give the same embeddings."""
        if self._encoder is not None:
            return self._encoder
        if self._cpu_only():
            from maskloop.engine.versions import BASE
            from maskloop.exporter.onnx_encoder import OnnxEncoder, known_encoder

            path = known_encoder(self.checkpoint_sha256)
            if path is not None:
                manifest = self.manifest(BASE)  # before the lock: the manifest may take it
                with _SHARED_LOCK:
                    if self._encoder is None:
                        self._encoder = OnnxEncoder(path, manifest)
                    return self._encoder
        self._encoder = self.embedder()
        return self._encoder

    def _cpu_only(self) -> bool:
        """Whether embeddings run on the CPU, decided without importing PyTorch: ``cpu`` asked for,
        or ``auto`` where no NVIDIA device exists (with one, ``device`` asks PyTorch)."""
        if self.device_request == "cpu":
            return True
        return self.device_request == "auto" and not any(Path("/dev").glob("nvidia[0-9]*"))

    @property
    def batch_size(self) -> int:
        return int(self.encoder().batch_size)

    def embed(self, images: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """HxWx3 uint8 RGB images (EXIF applied) -> float32 [N,256,64,64] embeddings."""
        encoder = self.encoder()
        with self.lock:
            embeddings: npt.NDArray[np.float32] = encoder.embed(list(images))
            return embeddings

    @property
    def onnx_dir(self) -> Path:
        """The base model's exported decoder folder."""
        return self.onnx_root / self.model_id

    def active_version(self) -> str:
        """``base`` or the name of the active fine-tuned version."""
        return self.versions.active()

    def version_onnx_dir(self, version: str) -> Path:
        from maskloop.engine.versions import BASE

        return self.onnx_dir if version == BASE else self.versions.onnx_dir(version)

    def manifest(self, version: str | None = None) -> dict[str, Any]:
        """The manifest of a version's exported decoder (default: the active version), with ``model_version``.

        The base decoder is exported on first use (once per process); a version's was exported
        when it was trained.
        """
        from maskloop.engine.versions import BASE

        version = version or self.active_version()
        with self._init_lock:
            if version == BASE:
                if self._manifest is None:
                    from maskloop.exporter.decoder_cache import current_export

                    sha = self.checkpoint_sha256  # takes the embedders' lock: before it
                    # The shared export made by `maskloop model prepare` or another folder's server:
                    # checked without importing torch (a new folder's start, issue 27).
                    self._manifest = current_export(self.onnx_dir, sha)
                if self._manifest is None:
                    # Exported by `maskloop model prepare` in a child process: tracing the model
                    # for ONNX leaves ~470 MiB resident in the process that does it (bench/RESULTS.md,
                    # issue 24), which a server would hold for its whole life.
                    prepare_in_child(self.model_type, self.checkpoint, self.onnx_root)
                    self._manifest = current_export(self.onnx_dir, sha)
                if self._manifest is None:  # the child could not: export here, and say why if it fails
                    from maskloop.exporter.onnx_export import ensure_decoder

                    # The export loads the model too: under the embedders' lock, so the precompute
                    # thread neither imports torchvision beside it nor builds a model mid-export.
                    with _SHARED_LOCK:
                        self._manifest = ensure_decoder(
                            self.model_type, self.checkpoint, self.onnx_dir, checkpoint_sha=sha
                        )
                return {**self._manifest, "model_version": BASE}
            if version not in self._version_manifests:
                self.versions.check_exists(version)
                self._version_manifests[version] = json.loads(
                    (self.versions.onnx_dir(version) / "manifest.json").read_text()
                )
            return self._version_manifests[version]

    def decoder_model(self, version: str | None = None) -> Sam:
        """The PyTorch ``Sam`` whose mask decoder is the version's (default: the active one's).

        It shares the image and prompt encoders with ``embedder().model``.
        """
        from maskloop.engine.versions import BASE, with_mask_decoder

        version = version or self.active_version()
        base = self.embedder().model
        if version == BASE:
            return base
        with self._init_lock:
            if version not in self._version_models:
                self._version_models[version] = with_mask_decoder(base, self.versions.decoder_state(version)).eval()
            return self._version_models[version]

    def native_decoder(self, version: str | None = None) -> OnnxDecoder:
        """The version's (default: the active one's) fp32 decoder on native onnxruntime
        (``OnnxDecoder``), opened on first use and run once: what answers a page's clicks while
        its own WASM decoder is still loading (server/decode.py)."""
        from maskloop.exporter.decoder_runtime import OnnxDecoder

        version = version or self.active_version()
        self.manifest(version)  # exports the base decoder if needed; raises UserError for an unknown version
        with self._init_lock:
            if version not in self._native_decoders:
                # One thread: requests from several pages run side by side, and on a busy machine
                # (a cold page compiling its wasm beside the server) one thread was 109 ms vs 177 ms
                # for two (p50, load 6 on 2 CPUs; two win only on an idle machine, 59 vs 100 ms).
                # The split pair when the export has it, as the page runs it: the prefix once per
                # image, then the per-prompt graph (about half the single graph's time per click).
                decoder = OnnxDecoder(self.version_onnx_dir(version), "fp32", threads=1, split=True)
                shape = decoder.manifest["embedding"]["shape"]
                decoder.decode_low_res(
                    np.zeros(shape, np.float32),
                    Prompt((64, 64), np.array([[1.0, 1.0]], np.float32), np.array([1.0], np.float32)),
                )
                self._native_decoders[version] = decoder
            return self._native_decoders[version]

    def generator(self, settings: GeneratorSettings, version: str | None = None) -> AutomaticMaskGenerator:
        """The process's ``AutomaticMaskGenerator`` for a model version (default: the active one) and
        ``GeneratorSettings``, built on first use: building one hashes the decoder's weights and opens
        its grid-decoder graph (seconds on a CPU), which the page's Propose must not pay per request.
        """
        from dataclasses import astuple

        from maskloop.engine.automatic import AutomaticMaskGenerator

        version = version or self.active_version()
        key = (version, astuple(settings))
        with self._generator_lock:
            if key not in self._generators:
                model = self.decoder_model(version)
                self._generators[key] = AutomaticMaskGenerator(model, self.embedder(), settings)
                self.generators_built += 1
            return self._generators[key]
