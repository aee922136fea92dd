"""Loads the fixtures every test area shares (``tests/support/fixtures.py``: the store backend, the
PostgreSQL cluster, the exported-decoder cache). pytest puts this folder on ``sys.path``, so the
helpers in ``tests/support/`` import as ``support.*``."""

pytest_plugins = ["support.fixtures"]
