"""The full pyramid cut in a child process at a low CPU priority.

``python -m maskloop.server.jobs.pyramid_cut SOURCE OUT ORIENTATION`` runs ``pyramid.cut_full``
at nice 10. A full cut of a 20,000² JPEG keeps libvips' threads busy for ~5 s. In the server's own
process it shared the two cores evenly with what the page was waiting for: the next image's coarse
levels and its embedding (the cold first views of 2.2–2.8 s in bench/RESULTS.md came from opens
made while the previous image was still being cut). At nice 10 it gets about a tenth of a core
that the server's work also wants, so what the page waits for goes first, yet it still finishes
while the server is busy for minutes (embedding a new folder, say), which nice 19 (~1.5 %) would
not. Its memory (~250 MiB for 20,000²) is not the server's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from maskloop.processes import alive

#: How much lower than the server the child runs (CFS weight 110 against the server's 1024).
NICENESS = 10
#: The start of the child's one-line error on stderr (libvips may write warnings there too).
SAYS = "pyramid_cut: "


class CutChildren:
    """The full cuts running in child processes, so that ``stop_all`` can end them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, tuple[subprocess.Popen[str], Path]] = {}
        self._stopped = False

    def cut(self, source: Path, out: Path, orientation: int = 1) -> None:
        """Cut the full pyramid of ``source`` into ``out`` in a child process; returns when it is
        there. Raises RuntimeError with the child's last error line when it fails or was stopped."""
        command = [sys.executable, "-m", __name__, str(source), str(out), str(orientation)]
        _remove_stale(out)
        with self._lock:
            if self._stopped:
                raise RuntimeError("the server is stopping")
            child = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            self._running[child.pid] = (child, out)
        try:
            _, err = child.communicate()
        finally:
            with self._lock:
                self._running.pop(child.pid, None)
        if child.returncode != 0:
            _remove_partial(out, child.pid)
            said = [line[len(SAYS) :] for line in err.splitlines() if line.startswith(SAYS)]
            raise RuntimeError(said[-1] if said else f"the cut stopped (exit status {child.returncode})")

    def stop_all(self) -> None:
        """Kill every running cut and remove what it had written; no new cut starts after this."""
        with self._lock:
            self._stopped = True
            running = list(self._running.values())
        for child, out in running:
            child.kill()
            child.wait()
            _remove_partial(out, child.pid)


def _remove_partial(out: Path, pid: int) -> None:
    """Remove the temporary folders a child ``pid`` was cutting ``out`` into (``cut_full`` names
    them ``<out>.<pid>.<thread>.tmp``)."""
    for tmp in out.parent.glob(f"{out.name}.{pid}.*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale(out: Path) -> None:
    """Remove temporary folders of ``out`` left by cuts whose process is gone (a server killed
    mid-cut takes its child with it: ``main`` asks for that)."""
    for tmp in out.parent.glob(f"{out.name}.*.tmp"):
        pid = tmp.name[len(out.name) + 1 :].split(".", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the server that started it dies (prctl
    PR_SET_PDEATHSIG); elsewhere a cut outlives its server and finishes on its own."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return


def main(argv: list[str] | None = None) -> int:
    """The child: ``SOURCE OUT ORIENTATION``; exit status 0 once ``OUT`` is complete."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m maskloop.server.jobs.pyramid_cut SOURCE OUT ORIENTATION", file=sys.stderr)
        return 2
    _die_with_parent()
    os.nice(NICENESS)
    from maskloop.server.jobs.pyramid import cut_full

    source, out, orientation = Path(args[0]), Path(args[1]), int(args[2])
    try:
        cut_full(source, out, orientation)
    except Exception as exc:  # noqa: BLE001 - reported to the server as one line
        print(SAYS + " ".join(f"{source.name}: {exc}".split()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
