"""Who may talk to the server: loopback by default; a token for anything else.

With no token the server refuses requests whose ``Host`` header is not a loopback name (a
defence against DNS rebinding: a web page on another site cannot reach a loopback server
under its own name). With accounts on the same defence applies (``allowed_host``): a ``Host``
must be a loopback name, the bound host, an IP address (a rebinding page always sends its own
domain name), this machine's name when bound to every interface, or one of ``ALLOWED_HOSTS``
(``MASKLOOP_ALLOWED_HOSTS=annotate.example.org,other.name``); so a page of another site cannot send
logins or anything else through a teammate's browser. With a token every ``/api/`` and ``/models/`` request must carry it, as
``Authorization: Bearer <token>``, ``?token=<token>``, or the cookie that opening
``/?token=<token>`` sets (so the page's ``<img>`` and worker fetches need not add it).

Cross-site requests are refused in every mode (a web page the annotator visits must not be able
to write annotations or start expensive work through the annotator's browser):
  * a write (POST, PUT, PATCH, DELETE) with a body must say ``Content-Type: application/json``
    (an HTML form cannot send that without a CORS preflight, which maskloop never grants);
  * a write whose ``Origin`` is not this server (``null`` included) is refused;
  * any ``/api/``, ``/models/`` or ``/stats`` request that the browser marks
    ``Sec-Fetch-Site: cross-site`` or ``same-site`` (e.g. an ``<img>`` on another page pointing
    at the polygon export) or that carries a foreign ``Origin`` is refused.
Clients without a browser (curl, scripts) send neither header and are not affected.

Every HTML response carries a strict ``Content-Security-Policy`` (``CONTENT_SECURITY_POLICY``:
scripts, styles, workers and fetches from this server only, WebAssembly compiled by the page's
onnxruntime-web, no plugins, no ``<base>``, no framing) and ``X-Frame-Options: DENY``, so no
other site can frame the page (clickjacking) and injected markup cannot run script.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

from maskloop.server.http.json_api import fail

COOKIE = "maskloop_token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
PROTECTED_PREFIXES = ("/api/", "/models/")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: ``Sec-Fetch-Site`` values of requests a same-origin page (or a person typing the URL) makes.
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})


#: The policy of every HTML response. ``'wasm-unsafe-eval'`` lets onnxruntime-web compile its
#: WebAssembly (nothing else is evaluated); ``blob:`` workers and images are what it and the canvases use.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "worker-src 'self' blob:",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


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


def _is_protected(path: str) -> bool:
    return path.startswith(PROTECTED_PREFIXES) or path == "/stats"


def _origin_is_ours(origin: str) -> bool:
    """Whether an ``Origin`` header names this server (same host and port as the request's ``Host``)."""
    try:
        parts = urlsplit(origin)
        netloc = parts.netloc.lower()
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not netloc:
        return False
    default_port = {"http": ":80", "https": ":443"}[parts.scheme]
    host = request.host.lower()
    return netloc == host or netloc.removesuffix(default_port) == host.removesuffix(default_port)


def check_cross_site() -> None:
    """Refuse requests another site makes through the annotator's browser (see the module's rules)."""
    origin = request.headers.get("Origin")
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    write = request.method in WRITE_METHODS
    if write or _is_protected(request.path):
        if origin is not None and not _origin_is_ours(origin):
            fail(403, f"cross-site request refused: Origin {origin[:100]!r} is not this server")
        if fetch_site and fetch_site not in SAME_ORIGIN_FETCH:
            fail(403, f"cross-site request refused (Sec-Fetch-Site: {fetch_site[:40]})")
    if write and (request.content_length or request.headers.get("Transfer-Encoding") or request.mimetype):
        if request.mimetype != "application/json":
            fail(
                415,
                f"send JSON: {request.method} {request.path} needs 'Content-Type: application/json'"
                f"{f', not {request.mimetype[:60]!r}' if request.mimetype else ''}",
            )


def configured_hosts() -> set[str]:
    """``ALLOWED_HOSTS`` (a comma-separated string, or a list from JSON in the environment), lower case."""
    value = current_app.config.get("ALLOWED_HOSTS") or ""
    names = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return {name.strip().lower().strip("[]") for name in names if name.strip()}


def allowed_host(host: str) -> bool:
    """Whether a request's host name (no port) may be served with accounts on (see the module)."""
    bound = str(current_app.config["HOST"]).lower().strip("[]")
    names = LOOPBACK_NAMES | {bound} | configured_hosts()
    if bound in ("0.0.0.0", "::", ""):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    if host in names:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_request() -> None:
    check_cross_site()
    from maskloop.server.http.auth import accounts_on

    if accounts_on():  # accounts (auth.py) replace the shared token; the Host check stays
        if not allowed_host(_request_host()):
            fail(
                403,
                f"requests for host {request.host[:100]!r} are refused: add the name to MASKLOOP_ALLOWED_HOSTS "
                "if people reach this server by it",
            )
        return
    token = current_app.config.get("TOKEN")
    if not token:
        bound = str(current_app.config["HOST"]).lower().strip("[]")
        if _request_host() not in LOOPBACK_NAMES | {bound} | configured_hosts():
            fail(
                403,
                f"requests for host {request.host!r} are refused: without a token maskloop answers only on loopback names",
            )
        return
    if _is_protected(request.path) and not _token_matches(_given_token(), token):
        fail(
            401,
            "missing or wrong token: send 'Authorization: Bearer <token>' or add ?token=<token> (maskloop serve prints it)",
        )
    if request.path == "/" and _token_matches(request.args.get("token"), token):
        g.set_token_cookie = True


def _response_headers(response: Response) -> Response:
    """The token cookie after ``/?token=``; the policy and frame headers on every HTML answer."""
    if g.pop("set_token_cookie", False):
        response.set_cookie(COOKIE, current_app.config["TOKEN"], httponly=True, samesite="Strict", path="/")
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Frame-Options"] = "DENY"
    return response


def init_app(app: Flask) -> None:
    """Generate a token for a non-loopback host if none was given, and check every request."""
    if not app.config.get("TOKEN") and not is_loopback(str(app.config["HOST"])):
        app.config["TOKEN"] = new_token()
    app.before_request(check_request)
    app.after_request(_response_headers)
