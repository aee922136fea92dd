"""``maskloop users add | list | reset | remove``: the accounts of a team (see ``auth.py``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from maskloop.cli.options import add_db_argument

if TYPE_CHECKING:
    from maskloop.server.store.accounts import NewAccount
    from maskloop.server.store.db import Connection


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``users add``, ``list``, ``reset`` and ``remove`` to the ``maskloop`` parser."""
    p = subparsers.add_parser("users", help="accounts and roles (the first account turns logins on)")
    sub = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    for action, helptext, func in (
        ("add", "create an account; prints its password and API token once", add_command),
        ("list", "list the accounts and their roles", list_command),
        (
            "reset",
            "a new one-time password and API token for an account; its old ones and its sessions stop working",
            reset_command,
        ),
        (
            "remove",
            "take an account's logins away (password, token, sessions; the images it holds are freed);"
            " its masks keep its name",
            remove_command,
        ),
    ):
        q = sub.add_parser(action, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        if action != "list":
            q.add_argument("name", metavar="NAME")
        if action == "add":
            q.add_argument("--role", required=True, choices=["annotator", "reviewer", "admin"])
        q.add_argument("--data", metavar="DIR", help="folder of images (its work folder's SQLite file by default)")
        q.add_argument("--workdir", metavar="W", help="work folder (default: DIR/.maskloop)")
        add_db_argument(q)
        q.set_defaults(func=func)


def _open(args: argparse.Namespace) -> Connection:
    from maskloop.server.settings import DEFAULTS, resolve_paths
    from maskloop.server.store.db import open_database

    config = dict(DEFAULTS, DATA_DIR=args.data, WORKDIR=args.workdir, DATABASE=args.db)
    resolve_paths(config)
    return open_database(config["DATABASE"])


def add_command(args: argparse.Namespace) -> int:
    from maskloop.server.store.accounts import add_account

    conn = _open(args)
    try:
        new = add_account(conn, args.name, args.role)
    finally:
        conn.close()
    _print_secrets(new, "created")
    return 0


def _print_secrets(new: NewAccount, what: str) -> None:
    print(f"maskloop: user {new.account.name} ({new.account.role}) {what}; shown once, keep them:")
    print(f"password: {new.password}")
    print(f"token: {new.token}")


def reset_command(args: argparse.Namespace) -> int:
    from maskloop.server.store.accounts import reset_account

    conn = _open(args)
    try:
        new = reset_account(conn, args.name)
    finally:
        conn.close()
    _print_secrets(new, "reset (its old password, token and sessions no longer work)")
    return 0


def remove_command(args: argparse.Namespace) -> int:
    from maskloop.server.store.accounts import REMOVED_NAME, any_account, remove_account

    conn = _open(args)
    try:
        account = remove_account(conn, args.name)
        left = any_account(conn)
    finally:
        conn.close()
    gone = REMOVED_NAME.format(name=account.name, id=account.id)
    print(f"maskloop: user {account.name} ({account.role}) removed; its masks now name it {gone}, and the name is free")
    if not left:
        print("maskloop: no account is left: the server runs in single-user mode again")
    return 0


def list_command(args: argparse.Namespace) -> int:
    from maskloop.server.store.accounts import list_accounts

    conn = _open(args)
    try:
        for account in list_accounts(conn):
            print(f"{account.name}\t{account.role}" + ("\tremoved" if account.removed else ""))
    finally:
        conn.close()
    return 0
