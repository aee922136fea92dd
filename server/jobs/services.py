"""The long-lived parts of one app: catalogue, model, embeddings (``app.extensions["maskloop"]``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maskloop.server.jobs import catalog as catalog_mod
from maskloop.server.jobs.catalog import Catalog, ScanReport
from maskloop.server.jobs.embeddings import EmbeddingService
from maskloop.server.jobs.export_cache import ExportCache
from maskloop.server.jobs.model import ModelService
from maskloop.server.store.db import open_database
from maskloop.server.store.images import list_images, mark_error


@dataclass
class Services:
    catalog: Catalog
    model: ModelService
    embeddings: EmbeddingService
    exports: ExportCache

    def rescan(self, progress: bool = False) -> ScanReport:
        """Scan the data folder and tell the embedding service which images exist."""
        report = self.catalog.scan(progress=progress)
        self.sync_embeddings()
        return report

    def maybe_rescan(self) -> None:
        """Rescan if the last scan is older than the configured interval."""
        report = self.catalog.maybe_rescan()
        if report is not None and report.changed:
            self.sync_embeddings()

    def sync_embeddings(self) -> None:
        conn = open_database(self.catalog.database)
        try:
            rows = list_images(conn)
        finally:
            conn.close()
        self.embeddings.sync(
            (row["sha256"], self.catalog.data_dir / row["file_name"], row["id"]) for row in rows if not row["error"]
        )

    def mark_image_error(self, image_id: int, message: str) -> None:
        conn = open_database(self.catalog.database)
        try:
            mark_error(conn, image_id, message)
        finally:
            conn.close()


def build_services(cfg: Mapping[str, Any]) -> Services:
    """Services for a config whose paths ``resolve_paths`` has filled in."""
    catalog = Catalog(
        Path(cfg["DATA_DIR"]),
        str(cfg["DATABASE"]),
        Path(cfg["WORKDIR"]),
        float(cfg["SCAN_INTERVAL"]),
        max_pixels=int(cfg["MAX_IMAGE_PIXELS"] or catalog_mod.DEFAULT_MAX_PIXELS),
    )
    model = ModelService.from_config(cfg, compile=bool(cfg["COMPILE"]))
    embeddings = EmbeddingService(model, Path(cfg["EMBEDDINGS_DIR"]), max_decodes=int(cfg["MAX_DECODES"]))
    exports = ExportCache(
        str(cfg["DATABASE"]),
        Path(cfg["WORKDIR"]) / "exports",
        max_waiting=int(cfg["EXPORT_MAX_WAITING"]),
        data_dir=Path(cfg["DATA_DIR"]),
    )
    services = Services(catalog, model, embeddings, exports)
    services.embeddings.on_image_error = services.mark_image_error
    return services
