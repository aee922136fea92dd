"""Model versions of one project: fine-tuned mask decoders under ``WORKDIR/models/``.

Layout::

    models/
      active.json            {"version": "v0002", "since": "2026-12-03T20:15:00Z"} ("base": the checkpoint); written atomically
      v0001/
        version.json         what it was trained on, how, and its held-out metrics
        mask_decoder.pt      the fine-tuned decoder's state dict (everything else is the base model)
        onnx/manifest.json   the exported decoders (browser's lowres variant) with their verification
        onnx/decoder*.onnx
      .partial-v0003-<pid>/  a run in progress; renamed to v0003 when complete, removed otherwise

A version belongs to one base checkpoint (``base_checkpoint_sha256``): it is only used with that
checkpoint. ``base`` is the checkpoint itself. Only one training run per project at a time
(``lock``), from any process.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maskloop.errors import UserError
from maskloop.validate import brief

if TYPE_CHECKING:
    import torch

BASE = "base"
_NAME = re.compile(r"^v(\d{4,})$")


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON so that readers see the old or the new file, never a half-written one (fsynced)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ModelVersions:
    """The versions folder of a project (``WORKDIR/models``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- reading ---------------------------------------------------------------------------
    def path(self, version: str) -> Path:
        return self.root / version

    def names(self) -> list[str]:
        """Complete versions, oldest first."""
        if not self.root.is_dir():
            return []
        found = [p.name for p in self.root.iterdir() if _NAME.match(p.name) and (p / "version.json").is_file()]
        return sorted(found, key=lambda n: int(n[1:]))

    def info(self, version: str) -> dict[str, Any]:
        """The ``version.json`` of a complete version."""
        self.check_exists(version)
        info: dict[str, Any] = json.loads((self.path(version) / "version.json").read_text())
        return info

    def check_exists(self, version: str) -> None:
        if version == BASE:
            return
        if not _NAME.match(version) or not (self.path(version) / "version.json").is_file():
            known = ", ".join([BASE, *self.names()])
            raise UserError(f"no model version {brief(version)} in {self.root} (known: {known})")

    def active(self) -> str:
        """The active version's name (``base`` when none was activated or the pointer is unusable)."""
        try:
            version = json.loads((self.root / "active.json").read_text())["version"]
        except (OSError, ValueError, KeyError, TypeError):
            return BASE
        if version != BASE and not (self.path(version) / "version.json").is_file():
            return BASE
        return str(version)

    def active_since(self) -> str | None:
        """When the active version became active (UTC, ISO 8601), None when unknown (never switched)."""
        try:
            since = json.loads((self.root / "active.json").read_text()).get("since")
        except (OSError, ValueError, AttributeError):
            return None
        return since if isinstance(since, str) else None

    def resolve(self, version: str) -> str:
        """``active`` -> the active version's name; anything else is checked and returned."""
        name = self.active() if version == "active" else version
        self.check_exists(name)
        return name

    def decoder_state(self, version: str) -> dict[str, torch.Tensor]:
        """The mask decoder's state dict of a version (CPU tensors)."""
        import torch  # here: listing and switching versions (``maskloop models``) need no torch

        self.check_exists(version)
        state: dict[str, torch.Tensor] = torch.load(
            self.path(version) / "mask_decoder.pt", map_location="cpu", weights_only=True
        )
        return state

    def onnx_dir(self, version: str) -> Path:
        return self.path(version) / "onnx"

    # -- writing ---------------------------------------------------------------------------
    def activate(self, version: str, base_sha256: str) -> None:
        """Make ``version`` (or ``base``) the active one; refuses a version of another base checkpoint."""
        self.check_exists(version)
        if version != BASE:
            trained_on = self.info(version).get("base_checkpoint_sha256")
            if trained_on != base_sha256:
                raise UserError(
                    f"{version} was trained on checkpoint {str(trained_on)[:12]}, not the project's "
                    f"{base_sha256[:12]}: serve with that checkpoint to use it"
                )
        self.root.mkdir(parents=True, exist_ok=True)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_json_atomic(self.root / "active.json", {"version": version, "since": since})

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the project's training lock (one run at a time, across processes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(f"a training run of this project is already in progress ({self.root})") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def remove_partials(self) -> None:
        """Delete what interrupted runs left (call with the lock held)."""
        if self.root.is_dir():
            for p in self.root.glob(".partial-*"):
                shutil.rmtree(p, ignore_errors=True)

    @contextlib.contextmanager
    def new_version(self) -> Iterator[tuple[str, Path]]:
        """(name, folder) of a version being written; it appears under its name only if the block completes.

        Call with the lock held. An exception (Ctrl+C included) removes the folder; a SIGKILL
        leaves a ``.partial-*`` folder that no reader lists and the next run removes.
        """
        self.remove_partials()
        numbers = [int(n[1:]) for n in self.names()]
        name = f"v{(max(numbers) + 1 if numbers else 1):04d}"
        tmp = self.root / f".partial-{name}-{os.getpid()}"
        tmp.mkdir(parents=True)
        try:
            yield name, tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.rename(tmp, self.path(name))
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def with_mask_decoder(model: Any, state: dict) -> Any:
    """A ``Sam`` that shares ``model``'s image and prompt encoders but has its own mask decoder with ``state``."""
    clone = copy.copy(model)
    clone._modules = dict(model._modules)
    decoder = copy.deepcopy(model.mask_decoder)
    decoder.load_state_dict(state)
    clone._modules["mask_decoder"] = decoder
    return clone


def decoder_only_copy(model: Any) -> Any:
    """A CPU ``Sam`` with copies of ``model``'s prompt encoder and mask decoder and no image encoder.

    What the ONNX exporter needs: it moves its model to the CPU, which must not move a shared
    image encoder off the GPU.
    """
    import torch

    class EncoderStandIn(torch.nn.Module):
        """Stands in for the image encoder where only its input size is read (exporting the decoder)."""

        def __init__(self, img_size: int) -> None:
            super().__init__()
            self.img_size = img_size

    clone = copy.copy(model)
    clone._modules = {
        "image_encoder": EncoderStandIn(int(model.image_encoder.img_size)),
        "prompt_encoder": copy.deepcopy(model.prompt_encoder).cpu(),
        "mask_decoder": copy.deepcopy(model.mask_decoder).cpu(),
    }
    clone._buffers = {k: v.cpu() for k, v in model._buffers.items()}
    return clone
