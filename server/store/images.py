"""The ``image`` table: the catalogue of the data folder's files, with their annotation counts.

A scan (``jobs.catalog``) compares the folder with ``scanned_files`` and writes what it read with
``record_scan``; the routes read images with ``list_images`` and ``get_image``.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass

from maskloop.server.store.db import Connection, Row, now, transaction

#: Images with ``num_annotations`` (accepted masks) and ``num_proposed`` (proposals not yet decided).
_WITH_COUNTS = """
SELECT i.*,
       (SELECT count(*) FROM annotation a WHERE a.image_id = i.id AND a.status = 'accepted') AS num_annotations,
       (SELECT count(*) FROM annotation a WHERE a.image_id = i.id AND a.status = 'proposed') AS num_proposed
FROM image i
"""


@dataclass(frozen=True)
class ImageFile:
    """What a scan read of one file; ``width``/``height`` are after EXIF orientation, ``error`` says
    why the file cannot be used (then the others may be None)."""

    file_name: str
    file_size: int
    file_mtime_ns: int
    sha256: str | None
    width: int | None
    height: int | None
    orientation: int
    format: str | None
    error: str | None


def list_images(conn: Connection) -> list[Row]:
    """Images present in the folder, in file-name order, with annotation counts."""
    return conn.execute(_WITH_COUNTS + " WHERE i.missing = 0 ORDER BY i.file_name").fetchall()


def get_image(conn: Connection, image_id: int) -> Row | None:
    """The image (present or missing) with annotation counts, or None when there is none."""
    row: Row | None = conn.execute(_WITH_COUNTS + " WHERE i.id = ?", (image_id,)).fetchone()
    return row


def usable_images_after(conn: Connection, file_name: str, count: int) -> list[Row]:
    """Up to ``count`` usable images (id, sha256, file_name) after ``file_name`` in list order."""
    return conn.execute(
        "SELECT id, sha256, file_name FROM image WHERE missing=0 AND error IS NULL AND file_name > ? ORDER BY file_name LIMIT ?",
        (file_name, count),
    ).fetchall()


def set_done(conn: Connection, image_id: int, done: bool) -> None:
    """Marks the image done, or clears the mark (its status then follows its masks)."""
    conn.execute("UPDATE image SET done=?, updated=? WHERE id=?", (int(done), now(), image_id))


def mark_error(conn: Connection, image_id: int, error: str) -> None:
    """Records that an image turned out unusable (e.g. its full decode failed); commits on its own."""
    with transaction(conn):
        conn.execute("UPDATE image SET error=?, updated=? WHERE id=?", (error, now(), image_id))


def scanned_files(conn: Connection) -> dict[str, Row]:
    """Every catalogued file by name (id, file_name, file_size, file_mtime_ns, missing, error), missing ones too."""
    return {
        row["file_name"]: row
        for row in conn.execute("SELECT id, file_name, file_size, file_mtime_ns, missing, error FROM image")
    }


def record_scan(conn: Connection, read: Sequence[ImageFile], known: Container[str], gone: Sequence[int]) -> None:
    """Writes one scan in one transaction: files ``read`` (updated if ``known``, else added), ids ``gone`` missing."""
    stamp = now()
    with transaction(conn):
        for f in read:
            values = (
                f.sha256,
                f.width,
                f.height,
                f.orientation,
                f.format,
                f.file_size,
                f.file_mtime_ns,
                f.error,
                stamp,
            )
            if f.file_name in known:
                conn.execute(
                    "UPDATE image SET sha256=?, width=?, height=?, orientation=?, format=?, file_size=?, file_mtime_ns=?,"
                    " error=?, missing=0, updated=? WHERE file_name=?",
                    (*values, f.file_name),
                )
            else:
                conn.execute(
                    "INSERT INTO image (sha256, width, height, orientation, format, file_size, file_mtime_ns, error, updated,"
                    " file_name, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (file_name) DO NOTHING",  # another server process scanning the same folder
                    (*values, f.file_name, stamp),
                )
        for image_id in gone:
            conn.execute("UPDATE image SET missing=1, updated=? WHERE id=?", (stamp, image_id))


def image_errors(conn: Connection) -> list[tuple[str, str]]:
    """(file name, error) of every present image that cannot be used, by file name."""
    return [
        (row["file_name"], row["error"])
        for row in conn.execute(
            "SELECT file_name, error FROM image WHERE error IS NOT NULL AND missing=0 ORDER BY file_name"
        )
    ]
