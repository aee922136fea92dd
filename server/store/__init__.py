"""The annotation store: the database adapter (SQLite, PostgreSQL), ``schema.sql``, migrations and
one module per table family. The only place that runs SQL; it imports nothing above it."""
