"""Where a folder export's files go: a new folder or a zip file, never half-written.

Both sinks write into a temporary file or folder beside the target (same file system) and rename
it into place on ``commit``; ``abort`` (or an exception inside ``sink_of``) removes it, so a
failed export leaves nothing behind. Paths inside the export are relative, with ``/``.

Images are copied, never hard-linked: a training tool that rewrites an image in place (as
Ultralytics does to repair a truncated JPEG) must not reach the user's original.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from maskloop.errors import UserError


class Sink(Protocol):
    """Where ``write_dataset`` puts the files of an export."""

    def write(self, relpath: str, data: bytes) -> None:
        """Write ``data`` as the file ``relpath`` of the export."""

    def add_file(self, relpath: str, source: Path) -> None:
        """Copy the file ``source`` into the export as ``relpath``."""

    def commit(self) -> None:
        """Put the finished export in place."""

    def abort(self) -> None:
        """Remove everything written so far."""


def check_out_folder(out: Path) -> None:
    """Refuse an ``--out`` folder an export cannot be written to, before any work is done.

    Raises:
      UserError: ``out`` is a file, a folder that holds something, or its parent folder is
        missing or not writable.
    """
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise UserError(f"--out {out} is a file: name a new or empty folder")
        if any(out.iterdir()):
            raise UserError(f"--out {out} is not empty: name a new or empty folder (nothing is overwritten)")
    parent = out.absolute().parent
    if not parent.is_dir():
        raise UserError(f"cannot write {out}: {parent} {'is not a folder' if parent.exists() else 'does not exist'}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {out}: the folder {parent} is not writable")


class FolderSink:
    """A new folder ``out`` (absent or empty; see ``check_out_folder``); nothing is made before the first file."""

    def __init__(self, out: Path) -> None:
        check_out_folder(out)
        self.out = out
        self.tmp: Path | None = None

    def _folder(self) -> Path:
        """The temporary folder beside ``out``, made on first use."""
        if self.tmp is None:
            parent = self.out.absolute().parent
            try:
                self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".tmp", dir=parent))
            except OSError as exc:
                raise UserError(f"cannot write {self.out}: {exc.strerror or exc}") from None
        return self.tmp

    def _path(self, relpath: str) -> Path:
        path = self._folder() / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write(self, relpath: str, data: bytes) -> None:
        self._path(relpath).write_bytes(data)

    def add_file(self, relpath: str, source: Path) -> None:
        shutil.copyfile(source, self._path(relpath))

    def commit(self) -> None:
        check_out_folder(self.out)  # still absent or empty
        tmp = self._folder()
        if self.out.is_dir():
            self.out.rmdir()
        os.rename(tmp, self.out)
        self.tmp = None

    def abort(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


class ZipSink:
    """A zip file ``out`` whose entries sit in one folder ``root`` (so that unzipping makes one folder).

    Images are stored as they are (they are compressed already); text and PNG labels are deflated.
    """

    def __init__(self, out: Path, root: str) -> None:
        self.out = out
        self.root = root
        self.tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        self._zip: zipfile.ZipFile | None = None

    @property
    def zip(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_DEFLATED)
        return self._zip

    def write(self, relpath: str, data: bytes) -> None:
        self.zip.writestr(f"{self.root}/{relpath}", data)

    def add_file(self, relpath: str, source: Path) -> None:
        self.zip.write(source, f"{self.root}/{relpath}", compress_type=zipfile.ZIP_STORED)

    def commit(self) -> None:
        self.zip.close()
        os.replace(self.tmp, self.out)

    def abort(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
            self.tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def committed(sink: Sink) -> Iterator[Sink]:
    """``with committed(sink):`` commits when the block ends, aborts (and re-raises) when it raises."""
    try:
        yield sink
        sink.commit()
    except BaseException:
        sink.abort()
        raise
