"""``maskloop db migrate`` and ``maskloop db copy``: bring a store's schema up to date, move a
project between backends (e.g. its SQLite file to PostgreSQL)."""

from __future__ import annotations

import argparse
import sys

from maskloop.cli.serve import add_db_argument
from maskloop.errors import UserError

#: The store's tables in foreign-key order (a table only refers to those before it).
#: (Login sessions and failed logins are not copied: they are short-lived.)
TABLES = ("account", "image", "category", "annotation", "review_log")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``db migrate`` and ``db copy`` to the ``maskloop`` parser."""
    p = subparsers.add_parser("db", help="database upkeep: migrate a store, copy it to another database")
    sub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    mi = sub.add_parser(
        "migrate",
        help="create or upgrade a store's schema",
        description="Create the schema in an empty database or upgrade an older store (a no-op when current).",
    )
    mi.add_argument("--data", metavar="DIR", help="folder of images (its work folder's SQLite file by default)")
    mi.add_argument("--workdir", metavar="W", help="work folder (default: DIR/.maskloop)")
    add_db_argument(mi)
    mi.set_defaults(func=migrate_command)

    co = sub.add_parser(
        "copy",
        help="copy a whole store into an empty database (e.g. SQLite -> PostgreSQL)",
        description="Copy every account, image, category and annotation, ids kept, into an empty store; all or nothing.",
    )
    co.add_argument("--from", dest="source", metavar="URL", required=True, help="the store to read")
    co.add_argument("--to", dest="target", metavar="URL", required=True, help="the empty store to write")
    co.set_defaults(func=copy_command)


def migrate_command(args: argparse.Namespace) -> int:
    from maskloop.server.settings import DEFAULTS, resolve_paths
    from maskloop.server.store.db import SCHEMA_VERSION, open_database, shown

    config = dict(DEFAULTS, DATA_DIR=args.data, WORKDIR=args.workdir, DATABASE=args.db)
    resolve_paths(config)
    open_database(config["DATABASE"]).close()
    print(f"maskloop: {shown(config['DATABASE'])} is at schema version {SCHEMA_VERSION}")
    return 0


def copy_store(source: str, target: str) -> dict[str, int]:
    """Copy every row of ``TABLES`` from store ``source`` into the empty store ``target``, ids kept.

    Returns:
      rows copied per table.
    Raises:
      UserError: the target already holds data, or either store cannot be opened.
    """
    from maskloop.server.store.db import PgConnection, open_database, shown, transaction

    src = open_database(source)
    dst = open_database(target)
    try:
        for table in TABLES:
            if dst.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
                raise UserError(f"{shown(target)} already holds data (table {table}): copy into an empty store")
        counts: dict[str, int] = {}
        with transaction(dst):
            for table in TABLES:
                cursor = src.execute(f"SELECT * FROM {table} ORDER BY id")
                columns = [d[0] for d in cursor.description]
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                counts[table] = 0
                while rows := cursor.fetchmany(1000):
                    dst.executemany(sql, [tuple(r) for r in rows])
                    counts[table] += len(rows)
                if isinstance(dst, PgConnection):  # identity columns do not follow explicit ids
                    dst.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false)"
                        f" FROM {table}"
                    )
    finally:
        src.close()
        dst.close()
    return counts


def copy_command(args: argparse.Namespace) -> int:
    from maskloop.server.store.db import shown

    if args.source == args.target:
        raise UserError("--from and --to name the same store")
    counts = copy_store(args.source, args.target)
    print(
        f"maskloop: copied {counts['account']} accounts, {counts['image']} images, {counts['category']} categories and "
        f"{counts['annotation']} annotations from {shown(args.source)} to {shown(args.target)}",
        file=sys.stderr,
    )
    return 0
