"""Image embeddings on disk (``embedding_cache``) and the background worker that precomputes them.

An embedding is keyed by (image content sha256, model id) and stored as
``<root>/<model_id>/<sha256>.npy``: float16, shape [1,256,64,64] (2,097,280 bytes with the
.npy header, then a 12-byte CRC-32 trailer). Files are written atomically (fsynced) and their
checksum is verified when read; a damaged file is deleted and computed again (``embedding_cache``).

The worker embeds pending images in batches of the embedder's batch size (1 on a CPU, more on
a GPU). A request for an image moves it, and the few images after it, to the front of the queue
and waits for its result. Restarting resumes: whatever is on disk is done.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from maskloop.errors import DiskFull, UserError, is_disk_full
from maskloop.server.jobs.embedding_cache import (  # re-exported: where they were first defined
    EMBEDDING_SHAPE,
    EmbeddingCache,
    EmbeddingError,
    release_freed_memory,
)
from maskloop.server.jobs.model import ModelService
from maskloop.server.jobs.views_first import ViewsFirst
from maskloop.tiles import Box

log = logging.getLogger(__name__)

__all__ = ["EMBEDDING_SHAPE", "EmbeddingCache", "EmbeddingError", "EmbeddingService", "release_freed_memory"]


class EmbeddingProgress(TypedDict):
    """How far the background embedding work is: images embedded, usable images, whether it runs."""

    done: int
    total: int
    running: bool


class PrecomputeState(TypedDict):
    """What ``/api/health`` reports of the precompute worker.

    ``state``: ``off`` (no worker: images are embedded when opened), ``loading`` (the model is
    loading), ``retrying`` (loading failed; ``error`` says why, it is tried again after a delay
    that doubles, ``attempts`` so far), ``running``, ``idle`` (every image embedded or waiting for
    new ones), ``failed`` (loading failed every time: images are embedded when opened).
    """

    state: str
    done: int
    total: int
    error: str | None
    attempts: int


#: Seconds between tries to load the model when the precompute worker cannot (doubling, capped).
LOAD_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0)


@dataclass
class Job:
    """One image to embed. ``sha256`` is the key; ``path`` the file; ``image_id`` for error reports."""

    sha256: str
    path: Path
    image_id: int
    finished: threading.Event = field(default_factory=threading.Event)
    data: bytes | None = None
    error: str | None = None
    unusable: bool = False  # the file itself is bad (not the model): drop it from the catalogue's count
    disk_full: bool = False  # the embedding was computed but could not be stored


class EmbeddingService:
    """Embeddings of the catalogue's images: cache reads, on-demand computation, precompute worker.

    Arguments:
      model: the shared model.
      root: embeddings folder (``<workdir>/embeddings``).
      on_image_error: called with (image_id, message) when an image file turns out unusable.
      max_decodes: images decoded and embedded at once (bounds memory).
    """

    def __init__(
        self,
        model: ModelService,
        root: Path,
        on_image_error: Callable[[int, str], None] | None = None,
        max_decodes: int = 2,
        retry_delays: tuple[float, ...] = LOAD_RETRY_DELAYS,
    ) -> None:
        self.model = model
        #: held from decoding an image until its embedding is done: a decoded image is ~3 bytes per
        #: pixel, and requests without the worker would otherwise decode in every thread at once
        self.decode_slots = threading.BoundedSemaphore(max(1, max_decodes))
        #: the page's first views of large images go before whole-image embeddings (views_first.py)
        self.views = ViewsFirst()
        self.root = root
        self.on_image_error = on_image_error
        self._cache: EmbeddingCache | None = None
        self._cond = threading.Condition()
        self._queue: OrderedDict[str, Job] = OrderedDict()  # pending, front first
        self._active: dict[str, Job] = {}  # being computed right now
        self._known: dict[str, tuple[Path, int]] = {}  # sha -> (path, image_id) of every usable image
        self._done: set[str] = set()
        self._thread: threading.Thread | None = None
        self._stop = False
        self.retry_delays = retry_delays
        self._state = "off"
        self._error: str | None = None
        self._attempts = 0
        self._region_locks: dict[tuple[str, Box], threading.Lock] = {}

    def _worker_alive(self) -> bool:
        """A worker that will embed what is queued (not one that gave up loading the model)."""
        return self._thread is not None and self._thread.is_alive() and self._state != "failed"

    @property
    def cache(self) -> EmbeddingCache:
        if self._cache is None:
            self._cache = EmbeddingCache(self.root, self.model.model_id)
        return self._cache

    def is_ready(self, sha256: str) -> bool:
        """Whether the embedding is on disk (as far as this process knows)."""
        return sha256 in self._done

    # -- catalogue -------------------------------------------------------------------------
    def sync(self, images: Iterable[tuple[str, Path, int]]) -> None:
        """Tell the service which images exist: (sha256, path, image_id), in the order to precompute."""
        images = list(images)
        known = {sha: (path, image_id) for sha, path, image_id in images}
        newly_done = {sha for sha in known if sha not in self._done and self.cache.has(sha)}
        with self._cond:
            self._known = known
            self._done |= newly_done
            for sha in list(self._queue):
                if sha not in known:
                    del self._queue[sha]
            if self._worker_alive():
                for sha, path, image_id in images:
                    if sha not in self._done and sha not in self._queue and sha not in self._active:
                        self._queue[sha] = Job(sha, path, image_id)
            self._cond.notify_all()

    def progress(self) -> EmbeddingProgress:
        """``{"done", "total", "running"}`` over the usable images of the catalogue."""
        with self._cond:
            total = len(self._known)
            done = sum(1 for sha in self._known if sha in self._done)
            running = self._worker_alive() and bool(self._queue or self._active)
        return EmbeddingProgress(done=done, total=total, running=running)

    def state(self) -> PrecomputeState:
        """The worker's state with the progress: what ``/api/health`` reports as ``precompute``."""
        progress = self.progress()
        with self._cond:
            state = self._state
            if state in ("running", "idle"):
                state = "running" if progress["running"] else "idle"
            return PrecomputeState(
                state=state, done=progress["done"], total=progress["total"], error=self._error, attempts=self._attempts
            )

    # -- requests --------------------------------------------------------------------------
    def prioritize(self, jobs: list[tuple[str, Path, int]]) -> None:
        """Move these images to the front of the queue, first one first (no-op without a worker)."""
        with self._cond:
            if not self._worker_alive():
                return
            for sha, path, image_id in reversed(jobs):
                if sha in self._done or sha in self._active:
                    continue
                job = self._queue.pop(sha, None) or Job(sha, path, image_id)
                self._queue[sha] = job
                self._queue.move_to_end(sha, last=False)
            self._cond.notify_all()

    def get(self, sha256: str, path: Path, image_id: int, timeout: float = 600.0) -> bytes:
        """The float16 ``.npy`` bytes of one image, computed now if not on disk.

        Raises:
          EmbeddingError: the image cannot be read or embedded, or the wait timed out.
        """
        data = self.cache.read(sha256)
        if data is not None:
            with self._cond:
                self._done.add(sha256)
            return data
        with self._cond:
            self._done.discard(sha256)
            job = self._active.get(sha256) or self._queue.get(sha256)
            if job is None and self._worker_alive():
                job = Job(sha256, path, image_id)
                self._queue[sha256] = job
            if job is not None and sha256 in self._queue:
                self._queue.move_to_end(sha256, last=False)
                self._cond.notify_all()
        if job is None:  # no worker: compute in this thread
            job = Job(sha256, path, image_id)
            self._compute([job])
        if not job.finished.wait(timeout):
            raise EmbeddingError(f"embedding image {image_id} took longer than {timeout:.0f} s")
        if job.error is not None:
            raise DiskFull(job.error) if job.disk_full else EmbeddingError(job.error)
        assert job.data is not None
        return job.data

    def get_region(self, sha256: str, path: Path, image_id: int, region: Box) -> bytes:
        """The float16 ``.npy`` bytes of a region (a tile or a crop, ``maskloop.tiles``; image
        pixels) of one image, embedded now in this thread if not on disk. The region is embedded as
        an image of its own: SAM's resize of its long side to the input size, then padding.

        Raises:
          EmbeddingError: the image cannot be read or embedded.
        """
        data = self.cache.read(sha256, region)
        if data is not None:
            return data
        with self._cond:
            lock = self._region_locks.setdefault((sha256, region), threading.Lock())
        try:
            with lock:  # two requests for one tile embed it once
                return self.cache.read(sha256, region) or self._embed_region(sha256, path, image_id, region)
        finally:
            with self._cond:
                self._region_locks.pop((sha256, region), None)

    def _embed_region(self, sha256: str, path: Path, image_id: int, region: Box) -> bytes:
        from maskloop.exporter.regions import read_region

        try:
            with self.decode_slots:
                pixels = read_region(path, region)
                embedding = self.model.embed([pixels])[0]
        except UserError as exc:
            raise EmbeddingError(f"image {image_id} cannot be embedded: {exc}") from None
        except Exception as exc:  # e.g. MemoryError: one line, the server goes on
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise EmbeddingError(f"embedding region {region} of image {image_id} failed: {first}") from None
        return self.cache.write(sha256, embedding, region)

    # -- worker ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the precompute worker (a daemon thread) and queue every image not yet embedded."""
        with self._cond:
            if self._thread is not None:
                return
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="maskloop-embeddings", daemon=True)
            for sha, (path, image_id) in self._known.items():
                if sha not in self._done and sha not in self._queue:
                    self._queue[sha] = Job(sha, path, image_id)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the worker to finish its current batch and exit."""
        with self._cond:
            self._stop = True
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)

    def _load(self) -> int | None:
        """The embedder's batch size once the model loads, trying again after each of
        ``retry_delays``; None when every try failed (or the worker was stopped meanwhile)."""
        for attempt, delay in enumerate((*self.retry_delays, None), start=1):
            with self._cond:
                self._state, self._attempts = "loading", attempt
            try:
                return max(1, self.model.batch_size)
            except Exception as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                with self._cond:
                    self._error = f"the model did not load: {first}"[:300]
                    if delay is None:
                        self._state = "failed"
                        break
                    self._state = "retrying"
                    log.warning("precompute: %s; trying again in %.0f s (attempt %d)", self._error, delay, attempt)
                    self._cond.wait_for(lambda: self._stop, timeout=delay)
                    if self._stop:
                        self._state = "off"
                        return None
        log.error("precompute stopped: %s (images are embedded when opened)", self._error)
        return None

    def _run(self) -> None:
        batch_size = self._load()
        if batch_size is None:  # no model, no worker; requests then compute (and report) in their own thread
            self._fail_all(self._error or "the precompute worker stopped")
            return
        with self._cond:
            self._state, self._error = "running", None
        while True:
            with self._cond:
                while not self._stop and not self._queue:
                    self._cond.wait()
                if self._stop:
                    self._state = "off"
                    return
                batch: list[Job] = []
                while self._queue and len(batch) < batch_size:
                    sha, job = self._queue.popitem(last=False)
                    self._active[sha] = job
                    batch.append(job)
            self._compute(batch)

    def _fail_all(self, message: str) -> None:
        with self._cond:
            for job in list(self._queue.values()):
                job.error = message
                job.finished.set()
            self._queue.clear()

    def _report_unusable(self, image_id: int, message: str) -> None:
        if self.on_image_error is None:
            return
        try:
            self.on_image_error(image_id, message)
        except Exception:
            log.exception("could not record that image %s is unusable", image_id)

    def _compute(self, jobs: list[Job]) -> None:
        """Embed ``jobs`` (one batch) and store the results; every job ends finished."""
        try:
            with self.decode_slots:
                self._compute_batch(jobs)
            release_freed_memory()
        finally:
            with self._cond:
                for job in jobs:
                    self._active.pop(job.sha256, None)
                    if job.data is not None:
                        self._done.add(job.sha256)
                    elif job.unusable:
                        self._known.pop(job.sha256, None)
                    elif job.error is None:
                        job.error = f"embedding image {job.image_id} failed"
                    job.finished.set()

    def _compute_batch(self, jobs: list[Job]) -> None:
        """A large image is embedded from its shrink-on-load overview (``jobs/overview.py``),
        never decoded whole; a small one from its whole decode, as SAM's predictor does."""
        from maskloop.server.jobs.overview import embedding_pixels, model_input

        images, sizes, ready = [], [], []
        for job in jobs:
            job.data = self.cache.read(job.sha256)  # another request or process may have made it
            if job.data is not None:
                continue
            self.views.wait_clear()
            try:
                pixels, hw = embedding_pixels(job.path)
                images.append(pixels)
                sizes.append(hw)
                ready.append(job)
            except UserError as exc:
                job.error = f"image {job.image_id} cannot be embedded: {exc}"
                job.unusable = True
                self._report_unusable(job.image_id, str(exc))
            except Exception as exc:  # e.g. MemoryError on a huge image: report it, keep the worker alive
                job.error = f"image {job.image_id} could not be read: {type(exc).__name__}: {exc}"
        if ready:
            try:
                if any(pixels.shape[:2] != hw for pixels, hw in zip(images, sizes)):  # an overview
                    size = int(self.model.encoder().input_size)
                    images = [model_input(pixels, hw, size) for pixels, hw in zip(images, sizes)]
                self.views.wait_clear()
                embeddings = self.model.embed(images)
                for job, embedding in zip(ready, embeddings):
                    job.data = self.cache.write(job.sha256, embedding)
            except Exception as exc:  # the worker must outlive any one failure (CUDA OOM, a full disk, ...)
                full = is_disk_full(exc)
                if full:
                    log.error("embedding not stored: %s", exc)
                else:
                    log.exception("embedding failed")
                for job in ready:
                    if job.data is not None:
                        continue
                    job.disk_full = full
                    job.error = (
                        str(exc)
                        if full
                        else f"embedding image {job.image_id} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                    )
