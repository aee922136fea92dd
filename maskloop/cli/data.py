"""The data commands: ``import-coco`` (COCO into a folder's store; the exports are in ``export.py``),
``db migrate``, ``db copy``, ``db backup`` and ``db restore`` (bring a store's schema up to date, move a
project between backends, e.g. its SQLite file to PostgreSQL, back it up and bring a backup back)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from maskloop.cli.options import add_db_argument, add_folder_arguments
from maskloop.errors import UserError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``import-coco`` and ``db migrate|copy|backup|restore`` to the ``maskloop`` parser."""
    p = subparsers.add_parser(
        "import-coco",
        help="bring COCO annotations into a folder's store",
        description="Import categories and annotations (polygons, RLE) from a COCO JSON file, "
        "matching images by file name. All or nothing; "
        "annotations already in the store are skipped.",
    )
    p.add_argument("file", metavar="FILE", help="COCO JSON file")
    add_folder_arguments(p)
    p.add_argument(
        "--as-proposals", action="store_true", help="store them as proposals to review, not as accepted masks"
    )
    p.add_argument("--skip-missing-images", action="store_true", help="skip annotations of images not in the folder")
    p.set_defaults(func=import_coco_command)

    p = subparsers.add_parser("db", help="database upkeep: migrate, copy, back up and restore a store")
    sub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    mi = sub.add_parser(
        "migrate",
        help="create or upgrade a store's schema",
        description="Create the schema in an empty database or upgrade an older store (a no-op when current).",
    )
    _add_store_arguments(mi)
    mi.set_defaults(func=migrate_command)

    co = sub.add_parser(
        "copy",
        help="copy a whole store into an empty database (e.g. SQLite -> PostgreSQL)",
        description="Copy every account, image, category and annotation, ids kept, into an empty store; all or nothing.",
    )
    co.add_argument("--from", dest="source", metavar="URL", required=True, help="the store to read")
    co.add_argument("--to", dest="target", metavar="URL", required=True, help="the empty store to write")
    co.set_defaults(func=copy_command)

    bk = sub.add_parser(
        "backup",
        help="write a consistent backup of a store to one file (safe while servers run)",
        description="SQLite: the online backup API; PostgreSQL: pg_dump's custom format. "
        "Written to a temporary file, fsynced and renamed.",
    )
    bk.add_argument("--to", dest="file", metavar="FILE", required=True, help="the backup file to write")
    _add_store_arguments(bk)
    bk.set_defaults(func=backup_command)

    rs = sub.add_parser(
        "restore",
        help="bring a backup back into a store (all or nothing)",
        description="A SQLite backup into SQLite (backup API) or PostgreSQL (row copy); a pg_dump file into "
        "PostgreSQL (pg_restore, one transaction). A store holding data needs --replace.",
    )
    rs.add_argument("--from", dest="file", metavar="FILE", required=True, help="the backup file to read")
    rs.add_argument("--replace", action="store_true", help="overwrite a store that already holds data")
    _add_store_arguments(rs)
    rs.set_defaults(func=restore_command)


def _add_store_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", help="folder of images (its work folder's SQLite file by default)")
    p.add_argument("--workdir", metavar="W", help="work folder (default: DIR/.maskloop)")
    add_db_argument(p)


def _store_target(args: argparse.Namespace) -> str:
    from maskloop.server.settings import DEFAULTS, resolve_paths

    config = dict(DEFAULTS, DATA_DIR=args.data, WORKDIR=args.workdir, DATABASE=args.db)
    resolve_paths(config)
    return str(config["DATABASE"])


def backup_command(args: argparse.Namespace) -> int:
    from maskloop.server.store.backup import backup_store
    from maskloop.server.store.db import shown

    target = _store_target(args)
    kind = backup_store(target, Path(args.file))
    size = Path(args.file).stat().st_size
    print(f"maskloop: backed up {shown(target)} to {args.file} ({kind}, {size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


def restore_command(args: argparse.Namespace) -> int:
    from maskloop.server.store.backup import restore_store
    from maskloop.server.store.db import shown

    target = _store_target(args)
    kind = restore_store(Path(args.file), target, replace=args.replace)
    print(f"maskloop: restored {shown(target)} from {args.file} ({kind} backup)", file=sys.stderr)
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    from maskloop.server.store.db import SCHEMA_VERSION, open_database, shown

    target = _store_target(args)
    open_database(target).close()
    print(f"maskloop: {shown(target)} is at schema version {SCHEMA_VERSION}")
    return 0


def copy_command(args: argparse.Namespace) -> int:
    from maskloop.server.store.db import shown

    if args.source == args.target:
        raise UserError("--from and --to name the same store")
    from maskloop.server.store.copy import copy_store

    counts = copy_store(args.source, args.target)
    print(
        f"maskloop: copied {counts['account']} accounts, {counts['image']} images, {counts['category']} categories and "
        f"{counts['annotation']} annotations ({counts['rating']} ratings) from {shown(args.source)} to {shown(args.target)}",
        file=sys.stderr,
    )
    return 0


def import_coco_command(args: argparse.Namespace) -> int:
    from maskloop.server.jobs.coco import import_coco

    path = Path(args.file)
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"COCO file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise UserError(f"{path} is nested too deeply to be a COCO file") from None
    except ValueError as exc:  # e.g. an integer literal beyond Python's 4300-digit limit
        raise UserError(f"{path} is not usable JSON: {str(exc).splitlines()[0]}") from None
    from maskloop.server.jobs.project import open_store

    conn = open_store(args.data, args.workdir, db=args.db).conn
    try:
        report = import_coco(conn, coco, as_proposals=args.as_proposals, skip_missing_images=args.skip_missing_images)
    finally:
        conn.close()
    kind = "proposals" if args.as_proposals else "accepted annotations"
    print(
        f"maskloop: imported {report.annotations} {kind} on {report.images_matched} images"
        + (f"; new categories: {', '.join(report.categories_created)}" if report.categories_created else "")
        + (f"; {report.ratings} mask ratings" if report.ratings else "")
    )
    if report.annotations_already_stored:
        print(
            f"maskloop: skipped {report.annotations_already_stored} annotations already in the store "
            "(same image, mask and category)"
        )
    if report.annotations_skipped:
        print(
            f"maskloop: skipped {report.annotations_skipped} annotations of {len(report.images_not_found)} images "
            "not in the folder",
            file=sys.stderr,
        )
    return 0
