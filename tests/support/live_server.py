"""``maskloop serve`` as a real subprocess on a free port: the one way the tests (``tests/server``,
``tests/web``) and the benchmarks (``bench/``) start a server.

The server's output is pumped into ``WORKDIR/serve.log`` by a thread, so a chatty server never
blocks on a full pipe; the URL is read from its "ready at http://HOST:PORT/" line.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

REPO = Path(__file__).resolve().parents[2]


class LiveServer:
    """``maskloop serve --data DATA --workdir WORK --port 0 [ARGS...]`` in a subprocess.

    Arguments:
      args: more ``serve`` arguments (``--db URL``, ``--no-precompute``, ``--device cpu`` ...).
      cache: folder for the exported decoder, embeddings and gzipped files, kept between runs
        (all keyed by model and content hashes, so reuse is safe); None: inside the work folder.
      env: more environment variables (``MASKLOOP_ONNX_DIR``, ``MASKLOOP_TORCH_THREADS`` ...).
      token: an account's API token, sent with this object's own requests (accounts on).
      timeout: seconds to wait for the server to listen (a first start exports the decoder).
      log_path: where the server's output goes (default ``WORKDIR/serve.log``).
    """

    def __init__(
        self,
        data: Path,
        workdir: Path,
        *,
        args: Sequence[str] = (),
        cache: Path | None = None,
        env: dict[str, str] | None = None,
        token: str | None = None,
        timeout: float = 600,
        log_path: Path | None = None,
    ) -> None:
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        environ = dict(os.environ, PYTHONUNBUFFERED="1")
        if cache is not None:
            environ["MASKLOOP_ONNX_DIR"] = str(cache / "onnx")
            environ["MASKLOOP_EMBEDDINGS_DIR"] = str(cache / "embeddings")
            environ["MASKLOOP_GZIP_DIR"] = str(cache / "gzip")
        environ.update(env or {})
        # The server's ONNX_DIR: the shared export in the user's cache unless the environment moves it.
        cache_root = Path(environ.get("MASKLOOP_CACHE") or Path.home() / ".cache" / "maskloop")
        self.onnx_root = Path(environ.get("MASKLOOP_ONNX_DIR") or cache_root / "onnx")
        self.log_path = log_path or Path(workdir) / "serve.log"
        Path(workdir).mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "maskloop.cli", "serve", "--data", str(data), "--workdir", str(workdir)]
        self.proc = subprocess.Popen(
            [*command, "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environ,
            cwd=REPO,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.url = self._wait_for_url(timeout)
        address = urlsplit(self.url)
        self.host: str = address.hostname or "127.0.0.1"
        self.port: int = int(address.port or 80)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log_path, "w") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                self._lines.put(line)

    def _wait_for_url(self, timeout: float) -> str:
        """The base URL (``http://HOST:PORT``, no query or trailing slash) once the server listens."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line)
            match = re.search(r"(?:ready|serving) at (http://[^\s?]+)", line)
            if match:
                return match.group(1).rstrip("/")
        self.stop()
        raise RuntimeError(f"maskloop serve did not start (exit {self.proc.poll()}):\n" + "".join(seen[-30:]))

    def get_json(self, path: str):
        with urllib.request.urlopen(urllib.request.Request(self.url + path, headers=self.headers), timeout=60) as r:
            return json.loads(r.read())

    def get_bytes(self, path: str) -> bytes:
        with urllib.request.urlopen(urllib.request.Request(self.url + path, headers=self.headers), timeout=600) as r:
            return r.read()

    def wait_for_embeddings(self, timeout: float = 600) -> None:
        """Wait until the server has precomputed every image's embedding."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self.get_json("/api/progress")
            if p["done"] >= p["total"]:
                return
            time.sleep(0.5)
        raise RuntimeError(f"embeddings not precomputed after {timeout}s: {p}")

    def image_id(self, file_name: str) -> int:
        return next(im["id"] for im in self.get_json("/api/images") if im["file_name"] == file_name)

    def embedding(self, image_id: int) -> np.ndarray:
        """The image's embedding as the page gets it ([1,256,64,64], the server's dtype)."""
        import io

        return np.load(io.BytesIO(self.get_bytes(f"/api/images/{image_id}/embedding")))

    def onnx_dir(self) -> Path:
        """The folder of the decoder the server exported (manifest.json and the .onnx files)."""
        return self.onnx_root / self.get_json("/api/model")["model_id"]

    def kill(self) -> None:
        """SIGKILL: no shutdown, no checkpoint (what a crash does)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
