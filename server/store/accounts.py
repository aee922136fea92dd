"""Accounts, roles, login sessions and bearer tokens, over a store connection (no Flask here).

Passwords are hashed with scrypt (``hashlib.scrypt``, N=2**14, r=8, p=1, 16-byte salt) and
compared in constant time. Bearer tokens and session ids are 256 random bits, so they are stored
as SHA-256 digests (a slow KDF adds nothing to a secret that cannot be guessed) and looked up by
digest. Failed logins are recorded in the store, so the rate limit holds across server processes.

The limit cannot lock the real user out (``login``): failures are counted per (name, address)
and per address, and only those refuse (429); failures of a name from every address only slow
its logins down (a growing delay, at most ``MAX_NAME_DELAY`` seconds), so the right password
from an address that has not failed is never refused.
A removed account keeps its row (its masks keep their author's name) with a password hash and a
token digest that nothing matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from maskloop.errors import UserError
from maskloop.server.store.db import Connection, IntegrityError, now, transaction

ROLES = ("annotator", "reviewer", "admin")
#: role -> rank: a route open to a role is open to every role of a higher rank.
RANK = {role: i for i, role in enumerate(ROLES)}
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
SESSION_SECONDS = 12 * 3600
#: Failed logins allowed per window for one account name from one client address, and from one
#: address for any names: then that address is refused (429) until the window has passed.
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_ADDRESS = 20
FAILURE_WINDOW = 300.0
#: Failures of one name (from all addresses) in the window before its logins are slowed down;
#: then each further failure doubles the delay from ``FIRST_NAME_DELAY``, up to ``MAX_NAME_DELAY`` s.
NAME_FAILURES_BEFORE_DELAY = 5
FIRST_NAME_DELAY = 0.25
MAX_NAME_DELAY = 2.0


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    role: str
    removed: bool = False

    def can(self, role: str) -> bool:
        """Whether this account has ``role``'s rights (admin > reviewer > annotator)."""
        return RANK[self.role] >= RANK[role]


@dataclass(frozen=True)
class NewAccount:
    """What ``add_account`` returns: the account and its secrets, shown once and never stored."""

    account: Account
    password: str
    token: str


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the ``hash_password`` string (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        expected = base64.b64decode(key)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return scheme == "scrypt" and hmac.compare_digest(got, expected)


#: A hash that matches nothing: unknown names cost the same scrypt as known ones.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


#: The password hash of a removed account: no password matches it (``verify_password``).
REMOVED = "removed"
#: How long a bearer token works (days) unless ``MASKLOOP_TOKEN_DAYS`` says otherwise; ``users
#: reset`` gives a new one.
TOKEN_DAYS = 90.0
#: What a removed account's name becomes, so that the name can be given to a new account that
#: inherits nothing (its masks, history and ratings keep pointing at the old one).
REMOVED_NAME = "{name}~removed-{id}"


def token_days() -> float:
    """How long a new bearer token works, in days (``MASKLOOP_TOKEN_DAYS``, default ``TOKEN_DAYS``)."""
    raw = os.environ.get("MASKLOOP_TOKEN_DAYS")
    try:
        return float(raw) if raw else TOKEN_DAYS
    except ValueError:
        raise UserError(f"MASKLOOP_TOKEN_DAYS must be a number of days, got {str(raw)[:40]!r}") from None


def _expiry(days: float | None) -> float:
    return time.time() + 86400.0 * (token_days() if days is None else days)


def any_account(conn: Connection) -> bool:
    """Whether the store has an account that can log in (one turns logins on)."""
    return conn.execute("SELECT 1 FROM account WHERE password_hash <> ? LIMIT 1", (REMOVED,)).fetchone() is not None


def _new_secrets() -> tuple[str, str]:
    """(password, bearer token) for a new or reset account."""
    return secrets.token_urlsafe(12), "mlt_" + secrets.token_urlsafe(32)


def add_account(conn: Connection, name: str, role: str, days: float | None = None) -> NewAccount:
    """Create an account with a fresh password and bearer token (working ``days``, default ``token_days()``).

    Raises:
      UserError: bad role or name, or the name is taken.
    """
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: use {', '.join(ROLES)}")
    name = name.strip()
    if not name or len(name) > 100 or any(c.isspace() or not c.isprintable() for c in name):
        raise UserError("a user name is 1-100 printable characters without spaces")
    password, token = _new_secrets()
    stamp = now()
    try:
        with transaction(conn):
            account_id = conn.execute(
                "INSERT INTO account (name, role, password_hash, token_hash, created, updated, token_expires)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (name, role, hash_password(password), digest(token), stamp, stamp, _expiry(days)),
            ).fetchall()[0][0]
    except IntegrityError:
        raise UserError(f"a user named {name!r} already exists") from None
    return NewAccount(Account(int(account_id), name, role), password, token)


def list_accounts(conn: Connection) -> list[Account]:
    rows = conn.execute("SELECT id, name, role, password_hash FROM account ORDER BY id")
    return [Account(r["id"], r["name"], r["role"], r["password_hash"] == REMOVED) for r in rows]


def _live_account(conn: Connection, name: str) -> Account:
    """The account named ``name`` (inside a transaction); UserError if there is none or it was removed."""
    row = conn.execute("SELECT id, name, role, password_hash FROM account WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise UserError(f"no user named {name!r}: maskloop users list shows them")
    if row["password_hash"] == REMOVED:
        raise UserError(f"user {name!r} was removed")
    return Account(row["id"], row["name"], row["role"])


def _replace_credentials(
    conn: Connection, account_id: int, password_hash: str, token_hash: str, days: float | None = None
) -> None:
    """Inside a transaction: the account's new password and token hashes; its sessions end."""
    conn.execute(
        "UPDATE account SET password_hash = ?, token_hash = ?, token_expires = ?, updated = ? WHERE id = ?",
        (password_hash, token_hash, _expiry(days), now(), account_id),
    )
    conn.execute("DELETE FROM login_session WHERE account_id = ?", (account_id,))


def reset_account(conn: Connection, name: str, days: float | None = None) -> NewAccount:
    """A new password and bearer token for ``name`` (working ``days``, default ``token_days()``);
    the old ones and its sessions stop working.

    Raises:
      UserError: no such account, or it was removed.
    """
    password, token = _new_secrets()
    with transaction(conn):
        account = _live_account(conn, name)
        _replace_credentials(conn, account.id, hash_password(password), digest(token), days)
    return NewAccount(account, password, token)


def remove_account(conn: Connection, name: str) -> Account:
    """Take ``name``'s logins away: password, token and sessions stop working and the images it
    holds are free again. The row stays, renamed ``REMOVED_NAME``, so its masks, history and ratings
    keep pointing at it, and the name is free for a new account that inherits none of them.

    Raises:
      UserError: no such account, or it was removed already.
    """
    with transaction(conn):
        account = _live_account(conn, name)
        # no SHA-256 digest looks like this token hash
        _replace_credentials(conn, account.id, REMOVED, f"{REMOVED}:{secrets.token_hex(16)}")
        conn.execute("UPDATE image SET held_by = NULL, lease_until = NULL WHERE held_by = ?", (account.id,))
        gone = REMOVED_NAME.format(name=account.name, id=account.id)
        conn.execute("UPDATE account SET name = ? WHERE id = ?", (gone, account.id))
        conn.execute("UPDATE rating SET rater = ? WHERE rater = ?", (gone, account.name))
    return account


class TokenExpired(UserError):
    """A known bearer token past its expiry."""


def account_by_token(conn: Connection, token: str) -> Account | None:
    """The account whose bearer token this is (looked up by SHA-256 digest), or None.

    Raises:
      TokenExpired: the token is known but expired (``users reset NAME`` gives a new one).
    """
    row = conn.execute(
        "SELECT id, name, role, token_expires, updated FROM account WHERE token_hash = ?", (digest(token),)
    ).fetchone()
    if row is None:
        return None
    expires = row["token_expires"]
    if expires is None:  # a token made before expiry existed: TOKEN_DAYS after its last change
        changed = datetime.fromisoformat(str(row["updated"]).replace("Z", "+00:00")).timestamp()
        expires = changed + 86400.0 * token_days()
    if time.time() >= float(expires):
        raise TokenExpired(
            f"the bearer token of {row['name']} expired: maskloop users reset {row['name']} gives a new one"
        )
    return Account(row["id"], row["name"], row["role"])


def session_account(conn: Connection, session_id: str) -> tuple[Account, str] | None:
    """(account, CSRF token) of a live session, or None when unknown or expired."""
    row = conn.execute(
        "SELECT a.id, a.name, a.role, s.csrf FROM login_session s JOIN account a ON a.id = s.account_id"
        " WHERE s.id_hash = ? AND s.expires > ?",
        (digest(session_id), time.time()),
    ).fetchone()
    return (Account(row["id"], row["name"], row["role"]), row["csrf"]) if row is not None else None


class TooManyFailures(Exception):
    """Login refused without checking the password; ``retry_after`` in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins: try again in {retry_after} s")
        self.retry_after = retry_after


def name_delay(failures: int) -> float:
    """Seconds a login of a name waits when it failed ``failures`` times (any addresses) in the window."""
    extra = failures - NAME_FAILURES_BEFORE_DELAY
    return 0.0 if extra < 0 else min(MAX_NAME_DELAY, FIRST_NAME_DELAY * 2.0 ** min(extra, 16))


def login(
    conn: Connection, name: str, password: str, address: str, sleep: Callable[[float], None] = time.sleep
) -> tuple[Account, str, str] | None:
    """Check a password; on success start a session: (account, session id, CSRF token).

    A name that failed often (from any addresses) waits ``name_delay`` seconds first, right
    password or not (so the delay tells nothing); a success clears its own address's failures.

    Raises:
      TooManyFailures: ``MAX_FAILURES_PER_NAME`` failures of this name from this address, or
        ``MAX_FAILURES_PER_ADDRESS`` from this address, in the last ``FAILURE_WINDOW`` seconds.
        Failures from other addresses never refuse a login.
    """
    t = time.time()
    since = t - FAILURE_WINDOW
    by_name_here = conn.execute(
        "SELECT count(*), min(at) FROM login_failure WHERE name = ? AND address = ? AND at > ?", (name, address, since)
    ).fetchone()
    by_address = conn.execute(
        "SELECT count(*), min(at) FROM login_failure WHERE address = ? AND at > ?", (address, since)
    ).fetchone()
    for (count, first), limit in ((by_name_here, MAX_FAILURES_PER_NAME), (by_address, MAX_FAILURES_PER_ADDRESS)):
        if count >= limit:
            raise TooManyFailures(max(1, int(first + FAILURE_WINDOW - t) + 1))
    (by_name,) = conn.execute("SELECT count(*) FROM login_failure WHERE name = ? AND at > ?", (name, since)).fetchone()
    delay = name_delay(int(by_name))
    if delay > 0:
        sleep(delay)
    row = conn.execute("SELECT id, name, role, password_hash FROM account WHERE name = ?", (name,)).fetchone()
    if row is not None and row["password_hash"] == REMOVED:
        row = None  # as an unknown name, at the same cost
    ok = verify_password(password, row["password_hash"] if row is not None else _DUMMY_HASH)
    with transaction(conn):
        conn.execute("DELETE FROM login_failure WHERE at < ?", (since,))
        if row is None or not ok:
            conn.execute("INSERT INTO login_failure (name, address, at) VALUES (?, ?, ?)", (name, address, t))
            return None
        conn.execute("DELETE FROM login_failure WHERE name = ? AND address = ?", (name, address))
        conn.execute("DELETE FROM login_session WHERE expires < ?", (t,))
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        conn.execute(
            "INSERT INTO login_session (id_hash, account_id, csrf, expires) VALUES (?, ?, ?, ?)",
            (digest(session_id), row["id"], csrf, t + SESSION_SECONDS),
        )
    return Account(row["id"], row["name"], row["role"]), session_id, csrf


def logout(conn: Connection, session_id: str) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM login_session WHERE id_hash = ?", (digest(session_id),))
