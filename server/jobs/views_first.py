"""The page's first view of a large image goes before whole-image embeddings.

Opening a 20,000² picture cuts its coarse levels from a shrink-on-load overview (~1 s of one
core, ``jobs/pyramid.py``). An embedding of the previous image (its own overview decode, then
the encoder on every core) running at the same time took that core, and the first view took
2-4 s instead of ~1.2 s (bench/RESULTS.md, 2026-12-05). So a whole-image embedding waits,
before each of its two steps (decoding the image, running the encoder), while a view is being
cut: a step already under way runs on, the next waits. Waiting is bounded, so a page that keeps
opening images cannot starve the embeddings.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The longest an embedding step waits for views to finish, in seconds.
MAX_WAIT_S = 5.0


class ViewsFirst:
    """Counts the views being cut; ``wait_clear`` holds a background step while any is."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._cutting = 0

    @contextmanager
    def view(self) -> Iterator[None]:
        """Held while the page waits for a view (a coarse cut)."""
        with self._cond:
            self._cutting += 1
        try:
            yield
        finally:
            with self._cond:
                self._cutting -= 1
                self._cond.notify_all()

    def busy(self) -> bool:
        """Whether a view is being cut now."""
        with self._cond:
            return self._cutting > 0

    def wait_clear(self, timeout: float = MAX_WAIT_S) -> bool:
        """Wait until no view is being cut, at most ``timeout`` s; whether none is."""
        with self._cond:
            return self._cond.wait_for(lambda: self._cutting == 0, timeout=timeout)
