"""Options several command groups share."""

from __future__ import annotations

import argparse


def add_db_argument(parser: argparse.ArgumentParser, default: object = None) -> None:
    """The ``--db URL`` option of every command that touches the store."""
    parser.add_argument(
        "--db",
        metavar="URL",
        default=default,
        help="the store: sqlite:///PATH or postgresql://USER@HOST:PORT/DB (default: a SQLite file WORKDIR/maskloop.db)",
    )


def add_folder_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--workdir`` and ``--db``: which project folder and store a command works on."""
    parser.add_argument("--data", metavar="DIR", help="folder of images (default: maskloop's sample_images/)")
    parser.add_argument(
        "--workdir", metavar="W", help="where the database, embeddings and decoder live (default: DIR/.maskloop)"
    )
    add_db_argument(parser)
