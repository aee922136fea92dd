"""The last few large arrays a process computed, by key: decoded pictures and overviews.

One decode of a large picture costs seconds and hundreds of MB, and several requests want the
same one at once (opening an image asks for its pyramid and its embedding together; the tiles a
person clicks through read one decoded picture). ``KeptArrays`` keeps the last ``most`` arrays,
read-only, and makes a second caller for a key being computed wait for the first one's result
instead of computing it again beside it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

K = TypeVar("K", bound=Hashable)
#: A picture or part of one: HxWx3 uint8.
Array = npt.NDArray[np.uint8]


class KeptArrays(Generic[K]):
    """The last ``most`` arrays by key (least recently used out first); thread-safe."""

    def __init__(self, most: int) -> None:
        self.most = most
        self._kept: OrderedDict[K, Array] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[K, threading.Lock] = {}

    def get(self, key: K, compute: Callable[[], Array]) -> Array:
        """The kept array of ``key``, or ``compute()``'s (made read-only and kept); exceptions pass through
        and keep nothing. Callers of a key being computed wait for it."""
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:
            with self._lock:
                if key in self._kept:
                    return self._kept[key]
            try:
                array = compute()
            finally:
                with self._lock:
                    self._computing.pop(key, None)
            array.setflags(write=False)
            with self._lock:
                self._kept[key] = array
                while len(self._kept) > self.most:
                    self._kept.popitem(last=False)
        return array

    def clear(self) -> None:
        """Forget every kept array."""
        with self._lock:
            self._kept.clear()
