"""The one exception type whose message is meant for people."""


class UserError(Exception):
    """A problem the user can fix (bad argument, missing file, wrong checkpoint).

    The CLI prints ``maskloop: error: <message>`` and exits with status 2; the HTTP
    layer answers ``{"error": <message>}`` with a 4xx. Messages are one line and say
    what to do.
    """


class DiskFull(UserError):
    """A write failed because the disk (or the user's quota) is full; nothing half-written was kept.

    The HTTP layer answers 507 Insufficient Storage; the CLI prints one line and exits with 2.
    """


#: errno values of a full disk or an exhausted quota (ENOSPC, EDQUOT).
_DISK_FULL_ERRNOS = frozenset({28, 122})
#: SQLite's result code for "database or disk is full" (SQLITE_FULL).
_SQLITE_FULL = 13
#: PostgreSQL's SQLSTATE for disk_full.
_PG_DISK_FULL = "53100"


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFull):
            return True
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
            return True
        if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL or getattr(exc, "sqlstate", None) == _PG_DISK_FULL:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


#: What a full disk means for the user ("the server's " or "the " goes before it).
DISK_FULL_MESSAGE = "disk is full: nothing was written; free some space and try again"
