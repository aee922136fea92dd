"""What the tests share, and the benchmarks too: a live ``maskloop serve`` (``live_server``), a
throwaway PostgreSQL (``pg_cluster``), sample data builders (``data``) and the pytest fixtures
built on them (``fixtures``, loaded by ``tests/conftest.py``).

Importable as ``support`` because pytest puts ``tests/`` on ``sys.path`` (``tests/conftest.py``);
``bench/`` scripts insert it themselves.
"""
