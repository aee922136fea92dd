"""What a long-running command says while it works: ``say`` prints one ``maskloop: ...`` line at
once, ``slow_step`` prints a line only for a step that takes longer than two seconds (then one
every ten seconds while it lasts, and the time it took)."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

#: A step quicker than this says nothing (seconds).
QUIET_FOR = 2.0
#: A slow step says it is still going this often (seconds).
REPEAT_EVERY = 10.0


def say(message: str, stream: TextIO | None = None) -> None:
    """Print ``maskloop: MESSAGE`` now (stdout unless ``stream``), flushed."""
    print(f"maskloop: {message}", file=stream or sys.stdout, flush=True)


@contextlib.contextmanager
def slow_step(
    message: str, quiet_for: float = QUIET_FOR, every: float = REPEAT_EVERY, stream: TextIO | None = None
) -> Iterator[None]:
    """Run the ``with`` block; if it lasts longer than ``quiet_for`` seconds print ``MESSAGE…``, then
    ``MESSAGE… (N s)`` every ``every`` seconds, and ``MESSAGE: done in N s`` when it ends."""
    out = stream or sys.stdout  # bound now: the watcher thread must write where the caller's output goes
    finished = threading.Event()
    spoke = threading.Event()
    start = time.monotonic()

    def watch() -> None:
        if finished.wait(quiet_for):
            return
        spoke.set()
        say(f"{message}…", out)
        while not finished.wait(every):
            say(f"{message}… ({time.monotonic() - start:.0f} s)", out)

    watcher = threading.Thread(target=watch, name="maskloop-slow-step", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        watcher.join()
        if spoke.is_set():
            say(f"{message}: done in {time.monotonic() - start:.1f} s", out)
