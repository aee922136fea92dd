"""The throwaway PostgreSQL of tests and benchmarks (tests/support/pg_cluster.py): no orphan outlives a killed run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support.pg_cluster import find_bin_dir, sweep_orphans

TESTS = Path(__file__).resolve().parents[1]
STARTER = f"""
import sys, time
sys.path.insert(0, {str(TESTS)!r})
from support.pg_cluster import TempCluster
cluster = TempCluster().start()
print(cluster.root, cluster.port, flush=True)
time.sleep(600)
"""


def test_a_killed_runs_cluster_is_stopped_and_removed_by_the_next_sweep():
    """A process SIGKILLed while its cluster runs leaves the server up; the sweep (run by every
    ``TempCluster.start``) stops it and removes its folder, and leaves a live process's cluster."""
    if find_bin_dir() is None:
        message = "PostgreSQL is not installed: run scripts/setup --test (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    starters = [subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        (dead_root, dead_port), (live_root, live_port) = (p.stdout.readline().split() for p in starters)
        starters[0].kill()
        starters[0].wait()
        socket.create_connection(("127.0.0.1", int(dead_port)), timeout=5).close()  # it outlived its owner

        swept = sweep_orphans(find_bin_dir())
        assert Path(dead_root) in swept and not Path(dead_root).exists()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", int(dead_port)), timeout=2).close()
        assert Path(live_root) not in swept and Path(live_root, "data", "postmaster.pid").exists()
        socket.create_connection(("127.0.0.1", int(live_port)), timeout=5).close()
    finally:
        for p in starters:
            p.kill()
            p.wait()
        sweep_orphans(find_bin_dir())  # the second one, now an orphan too
