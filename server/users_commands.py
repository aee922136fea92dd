"""``maskloop users add`` and ``maskloop users list``: the accounts of a team (see ``auth.py``)."""

from __future__ import annotations

import argparse

from maskloop.server.commands import add_db_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``users add`` and ``users list`` to the ``maskloop`` parser."""
    p = subparsers.add_parser("users", help="accounts and roles (the first account turns logins on)")
    sub = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    for action, helptext in (
        ("add", "create an account; prints its password and API token once"),
        ("list", "list the accounts and their roles"),
    ):
        q = sub.add_parser(action, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        if action == "add":
            q.add_argument("name", metavar="NAME")
            q.add_argument("--role", required=True, choices=["annotator", "reviewer", "admin"])
        q.add_argument("--data", metavar="DIR", help="folder of images (its work folder's SQLite file by default)")
        q.add_argument("--workdir", metavar="W", help="work folder (default: DIR/.maskloop)")
        add_db_argument(q)
        q.set_defaults(func=add_command if action == "add" else list_command)


def _open(args: argparse.Namespace):
    from maskloop.server import DEFAULTS, resolve_paths
    from maskloop.server.db import open_database

    config = dict(DEFAULTS, DATA_DIR=args.data, WORKDIR=args.workdir, DATABASE=args.db)
    resolve_paths(config)
    return open_database(config["DATABASE"])


def add_command(args: argparse.Namespace) -> int:
    from maskloop.server.accounts import add_account

    conn = _open(args)
    try:
        new = add_account(conn, args.name, args.role)
    finally:
        conn.close()
    print(f"maskloop: user {new.account.name} ({new.account.role}) created; shown once, keep them:")
    print(f"password: {new.password}")
    print(f"token: {new.token}")
    return 0


def list_command(args: argparse.Namespace) -> int:
    from maskloop.server.accounts import list_accounts

    conn = _open(args)
    try:
        for account in list_accounts(conn):
            print(f"{account.name}\t{account.role}")
    finally:
        conn.close()
    return 0
