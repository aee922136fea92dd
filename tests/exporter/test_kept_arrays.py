"""``KeptArrays``: the last few decoded pictures, one decode per key at a time."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from maskloop.exporter.kept_arrays import KeptArrays


def test_callers_of_one_key_share_one_compute_and_the_oldest_key_goes_first():
    kept: KeptArrays[str] = KeptArrays(2)
    computed: list[str] = []

    def picture(name: str):
        def compute():
            computed.append(name)
            time.sleep(0.2)  # long enough for the other threads to arrive while it runs
            return np.zeros((4, 4, 3), np.uint8)

        return compute

    got = []
    threads = [threading.Thread(target=lambda: got.append(kept.get("a", picture("a")))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert computed == ["a"] and all(g is got[0] for g in got)
    assert not got[0].flags.writeable, "a kept picture is shared: it must be read-only"
    kept.get("b", picture("b"))
    kept.get("a", picture("a"))  # a used again: b is now the oldest
    kept.get("c", picture("c"))
    kept.get("a", picture("a"))
    kept.get("b", picture("b"))
    assert computed == ["a", "b", "c", "b"]


def test_a_failed_compute_keeps_nothing_and_the_next_caller_tries_again():
    kept: KeptArrays[str] = KeptArrays(1)

    def broken():
        raise ValueError("unreadable")

    with pytest.raises(ValueError):
        kept.get("a", broken)
    assert kept.get("a", lambda: np.ones((1, 1, 3), np.uint8)).sum() == 3
