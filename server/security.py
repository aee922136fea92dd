"""Who may talk to the server: loopback by default; a token for anything else.

With no token the server refuses requests whose ``Host`` header is not a loopback name (a
defence against DNS rebinding: a web page on another site cannot reach a loopback server
under its own name). With a token every ``/api/`` and ``/models/`` request must carry it, as
``Authorization: Bearer <token>``, ``?token=<token>``, or the cookie that opening
``/?token=<token>`` sets (so the page's ``<img>`` and worker fetches need not add it).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from flask import Flask, Response, current_app, g, request

from maskloop.server.http import fail

COOKIE = "maskloop_token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
PROTECTED_PREFIXES = ("/api/", "/models/")


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server on this machine."""
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _given_token() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.args.get("token") or request.cookies.get(COOKIE)


def _token_matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def _request_host() -> str:
    host = request.host.lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def check_request() -> None:
    token = current_app.config.get("TOKEN")
    if not token:
        bound = str(current_app.config["HOST"]).lower().strip("[]")
        if _request_host() not in LOOPBACK_NAMES | {bound}:
            fail(403, f"requests for host {request.host!r} are refused: without a token maskloop answers only on loopback names")
        return
    if request.path.startswith(PROTECTED_PREFIXES) and not _token_matches(_given_token(), token):
        fail(401, "missing or wrong token: send 'Authorization: Bearer <token>' or add ?token=<token> (maskloop serve prints it)")
    if request.path == "/" and _token_matches(request.args.get("token"), token):
        g.set_token_cookie = True


def _set_cookie(response: Response) -> Response:
    if g.pop("set_token_cookie", False):
        response.set_cookie(COOKIE, current_app.config["TOKEN"], httponly=True, samesite="Strict", path="/")
    return response


def init_app(app: Flask) -> None:
    """Generate a token for a non-loopback host if none was given, and check every request."""
    if not app.config.get("TOKEN") and not is_loopback(str(app.config["HOST"])):
        app.config["TOKEN"] = new_token()
    app.before_request(check_request)
    app.after_request(_set_cookie)
