"""maskloop's server, in three layers that import one way: ``http`` -> ``jobs`` -> ``store``.

- ``http/``: the Flask app factory (``http/app.py``), one blueprint per resource, request
  validation and auth; the only place that imports Flask.
- ``jobs/``: embeddings and their cache, the model, decoding, proposals, automatic runs,
  training, exports; they reach the database through the store's functions.
- ``store/``: the database adapter (SQLite, PostgreSQL), ``schema.sql``, migrations and one
  module per table family; the only place that runs SQL.
- ``settings.py``: the defaults and path resolution every layer and command shares.

See docs/architecture.md.
"""
