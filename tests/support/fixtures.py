"""The pytest fixtures every test area shares (loaded by ``tests/conftest.py``): the store backend
(SQLite file or a real PostgreSQL), and the folder that keeps the exported base decoder and
embeddings between tests and runs.

A test module that sets ``BACKENDS = ("sqlite", "postgresql")`` runs each test that uses the
``database`` fixture (directly or through ``app``) once per backend. PostgreSQL is a real server
(Debian's ``postgresql``: ``initdb`` + ``pg_ctl`` in a temporary folder, on a free port), started
once per session; each test gets a schema of its own in it.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

ALL_BACKENDS = ("sqlite", "postgresql")
_schemas = itertools.count(1)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" in metafunc.fixturenames:
        backends = getattr(metafunc.module, "BACKENDS", ("sqlite",))
        metafunc.parametrize("database", backends, indirect=True)


@pytest.fixture(scope="session")
def pg_cluster():
    """A PostgreSQL server for this test session (stopped and removed at the end)."""
    from support.pg_cluster import TempCluster, find_bin_dir

    if find_bin_dir() is None:
        message = "PostgreSQL is not installed: run scripts/setup --test (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cluster = TempCluster().start()
    try:
        cluster.create_database("maskloop_test")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def database(request, tmp_path) -> str:
    """The store's target: ``tmp_path/work/maskloop.db`` (SQLite) or a fresh PostgreSQL schema's URL."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        return str(tmp_path / "work" / "maskloop.db")
    import psycopg

    cluster = request.getfixturevalue("pg_cluster")
    schema = f"test_{next(_schemas)}"
    with psycopg.connect(cluster.url("maskloop_test"), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return cluster.url("maskloop_test", schema)


@pytest.fixture(scope="session")
def web_cache(tmp_path_factory, request) -> Path:
    """Folder for the exported decoder and embeddings, kept between runs in pytest's cache
    folder (both are keyed by model and image hashes, so reuse is safe). Its ``onnx`` folder is
    the base decoder's export for the page tests and the server tests alike: one export per
    session at most."""
    if getattr(request.config, "cache", None) is not None:
        return Path(request.config.cache.mkdir("maskloop-web"))
    return tmp_path_factory.mktemp("web-cache")  # pytest -p no:cacheprovider
