"""Checks of values that come from outside (request bodies, query strings, COCO files).

Each check returns the clean value or raises ``ValidationError`` with one line that names the
field and says what is wrong; the HTTP layer turns it into a 400, the CLI into exit 2. Limits
are those of what stores the value: SQLite integers are signed 64-bit, text must be valid
Unicode (no lone surrogates) and is kept short where a person reads it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from maskloop.errors import UserError

#: SQLite INTEGER range (signed 64-bit); larger Python ints raise OverflowError in sqlite3.
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
#: Longest name (category, supercategory, model id) a request may set.
MAX_NAME_LENGTH = 200
#: Deepest nesting of arrays/objects a JSON document may have (deeper ones are refused before use).
MAX_JSON_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


class ValidationError(UserError):
    """A value from outside that cannot be used; the message names the field."""


#: The most characters of a bad value an error message quotes.
BRIEF_LIMIT = 100


def brief(value: Any, limit: int = 60) -> str:
    """A short repr for error messages (a 50 MB string must not come back in the answer)."""
    text = (
        repr(value)
        if not isinstance(value, int) or abs(value) < 10**30
        else f"an integer of {len(str(abs(value)))} digits"
    )
    limit = min(limit, BRIEF_LIMIT)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def choice(value: Any, name: str, options: Any) -> str:
    """One of ``options`` (strings); any other JSON value (a list, an object, a number) is refused."""
    if not isinstance(value, str) or value not in options:
        raise ValidationError(f"{name} must be one of {', '.join(options)}, got {brief(value)}")
    return value


def boolean(value: Any, name: str) -> bool:
    """A JSON true or false (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be true or false, got {brief(value)}")
    return value


def integer(value: Any, name: str, minimum: int = INT64_MIN, maximum: int = INT64_MAX) -> int:
    """A JSON integer (not a bool, not a float) within [minimum, maximum]."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{name} must be an integer, got {brief(value)}")
    if not minimum <= value <= maximum:
        bounds = (
            f">= {minimum}"
            if maximum == INT64_MAX
            else f"<= {maximum}"
            if minimum == INT64_MIN
            else f"from {minimum} to {maximum}"
        )
        raise ValidationError(f"{name} must be an integer {bounds}, got {brief(value)}")
    return value


def number(value: Any, name: str, minimum: float | None = None, maximum: float | None = None) -> float:
    """A finite JSON number (int or float, not a bool) within the bounds, as a float."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValidationError(f"{name} must be a number, got {brief(value)}")
    try:
        result = float(value)
    except OverflowError:  # an int beyond float range, e.g. 10**400
        raise ValidationError(f"{name} must be a finite number, got {brief(value)}") from None
    if not math.isfinite(result):
        raise ValidationError(f"{name} must be a finite number, got {brief(value)}")
    if (minimum is not None and result < minimum) or (maximum is not None and result > maximum):
        bounds = (
            f"from {minimum:g} to {maximum:g}"
            if minimum is not None and maximum is not None
            else (f">= {minimum:g}" if minimum is not None else f"<= {maximum:g}")
        )
        raise ValidationError(f"{name} must be a number {bounds}, got {brief(value)}")
    return result


def text(value: Any, name: str, max_length: int = MAX_NAME_LENGTH, strip_check: bool = False) -> str:
    """A string of at most ``max_length`` characters, without NUL or lone surrogates.

    ``strip_check``: also refuse an empty string and leading/trailing whitespace (names that
    would otherwise look equal to another name).
    """
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string, got {brief(value)}")
    if len(value) > max_length:
        raise ValidationError(f"{name} is {len(value)} characters long; at most {max_length} are allowed")
    check_string(value, name)
    if strip_check:
        if not value.strip():
            raise ValidationError(f"{name} must be a non-empty string")
        if value != value.strip():
            raise ValidationError(f"{name} {brief(value)} starts or ends with whitespace: send it without")
    return value


def check_string(value: str, name: str) -> None:
    """Refuse NUL characters and lone surrogates (not Unicode text; SQLite cannot store them as UTF-8)."""
    if "\x00" in value:
        raise ValidationError(f"{name} contains a NUL character")
    if _SURROGATE.search(value):
        raise ValidationError(f"{name} contains a lone surrogate (not valid Unicode text)")


def json_tree(value: Any, name: str = "the request body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Check a parsed JSON document: nesting at most ``max_depth``, every string and key clean
    (``check_string``). Iterative, so a deep document cannot exhaust the stack here."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_string(item, f"a string in {name}")
        elif isinstance(item, (list, dict)):
            if depth > max_depth:
                raise ValidationError(f"{name} is nested more than {max_depth} levels deep")
            if isinstance(item, dict):
                for key, child in item.items():
                    check_string(key, f"a key in {name}")
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return value
