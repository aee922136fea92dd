"""Logins for teams: with accounts in the store, every route needs a session or a bearer token,
and the account's role must allow the route.

Single-user mode stays the default: a store without accounts (``maskloop users add`` creates
the first) is served as before, loopback-only or with the shared token (``security.py``).
``MASKLOOP_ACCOUNTS`` = ``auto`` (default: on once an account exists), ``true`` or ``false``.

With accounts on:
  * the login page (``/login``, its script and style) and ``POST /api/login`` are the only
    routes open without credentials; everything else answers 401;
  * a browser logs in with name + password and gets a session cookie (``HttpOnly``,
    ``SameSite=Strict``, ``Secure`` over HTTPS) and a CSRF token (in the login answer and the
    readable cookie ``maskloop_csrf``); every state-changing request of a session must send it
    as ``X-CSRF-Token`` (compared in constant time), on top of ``security.py``'s cross-site rules;
  * scripts send ``Authorization: Bearer <token>`` (no cookie, so no CSRF token needed);
  * ``REQUIRED_ROLE`` says which role each route needs (admin > reviewer > annotator); a route
    missing from it needs admin, so a new route is closed until someone opens it;
  * failed logins are limited per (name, address) and per address (``accounts.MAX_FAILURES_*``):
    429 from that address; a name's failures from all addresses only slow its logins down (at
    most ``accounts.MAX_NAME_DELAY`` s), so nobody can lock a teammate out; each failure is
    logged with the address.
"""

from __future__ import annotations

import hmac
import logging

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    jsonify,
    request,
    send_from_directory,
)

from maskloop import validate
from maskloop.server.http.db import get_db
from maskloop.server.http.json_api import fail, json_body, retry_later
from maskloop.server.store import accounts

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

SESSION_COOKIE = "maskloop_session"
CSRF_COOKIE = "maskloop_csrf"
CSRF_HEADER = "X-CSRF-Token"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC_ENDPOINTS = frozenset({"auth.login_page", "auth.login"})
#: Files under /web/ that the login page needs.
LOGIN_ASSETS = frozenset({"js/login.js", "css/login.css"})

_ANNOTATOR = (
    "static.index static.web_file static.ort_file static.ort_versioned_file static.model_manifest static.model_file "
    "static.model_version_file static.health images.thumbnail "
    "images.list_images images.get_image images.image_file images.embedding images.progress images.patch_image "
    "decode.decode "
    "categories.list_categories annotations.get_annotation annotations.list_annotations "
    "annotations.create_annotation annotations.patch_annotation annotations.delete_annotation "
    "engine.propose learning.active_version learning.list_versions learning.training_state learning.training_cadence "
    "auth.logout auth.me work.next_image work.renew_hold work.release_hold cleanup.get_cleanup "
    "polygons.get_polygons polygons.put_polygons ratings.list_ratings pyramid.manifest pyramid.tile"
)
_REVIEWER = (
    "export.coco export.dataset engine.stats engine.stats_page work.next_review work.take_review review.decide "
    "review.decide_mask annotations.image_history ratings.rate_annotation"
)
_ADMIN = (
    "categories.create_category categories.patch_category categories.delete_category categories.order_categories "
    "images.rescan "
    "learning.start_training learning.switch_version learning.cancel_training learning.set_training_cadence "
    "cleanup.set_cleanup"
)
#: endpoint -> the least role that may use it.
REQUIRED_ROLE: dict[str, str] = {
    **dict.fromkeys(_ANNOTATOR.split(), "annotator"),
    **dict.fromkeys(_REVIEWER.split(), "reviewer"),
    **dict.fromkeys(_ADMIN.split(), "admin"),
}


def accounts_on() -> bool:
    """Whether this request is served with accounts (see the module's ``MASKLOOP_ACCOUNTS``).

    ``auto``: a credential of the request that names an account proves that the store has one,
    so a logged-in request asks the store once (its credential), not twice.
    """
    if "accounts_on" not in g:
        mode = current_app.config.get("ACCOUNTS", "auto")
        if mode != "auto":
            g.accounts_on = bool(mode)
        else:
            _look_up_credential()
            known = g.credential is not None or g.credential_error is not None
            g.accounts_on = known or accounts.any_account(get_db())
    return bool(g.accounts_on)


def _look_up_credential() -> None:
    """Once per request: ``g.credential``, the (account, session CSRF token or None) that the bearer
    token or session cookie names, or None; ``g.credential_error``, why a known token is refused."""
    if "credential" in g:
        return
    g.credential, g.credential_error = None, None
    if not has_request_context():  # ``serve`` asks at start, in an app context
        return
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        try:
            account = accounts.account_by_token(get_db(), header[7:].strip())
        except accounts.TokenExpired as exc:
            g.credential_error = str(exc)
            return
        g.credential = (account, None) if account is not None else None
    else:
        session_id = request.cookies.get(SESSION_COOKIE)
        g.credential = accounts.session_account(get_db(), session_id) if session_id else None


def current_account() -> accounts.Account | None:
    """The logged-in account of this request; None in single-user mode."""
    account: accounts.Account | None = g.get("account")
    return account


def _is_public() -> bool:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return True
    return request.endpoint == "static.web_file" and (request.view_args or {}).get("filename") in LOGIN_ASSETS


def check_account() -> Response | None:
    """``before_request``: who is asking, and may their role do this (401 / 403 otherwise)."""
    if not accounts_on() or _is_public():
        return None
    _look_up_credential()
    found: tuple[accounts.Account, str | None] | None = g.credential
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        if g.credential_error is not None:
            fail(401, g.credential_error)
        if found is None:
            fail(401, "unknown bearer token: maskloop users add NAME prints one")
        account = found[0]
    else:
        if found is None:
            if request.endpoint == "static.index":
                return _login_redirect()
            fail(401, "log in first (open /login), or send 'Authorization: Bearer <token>'")
        account, csrf = found
        if request.method in WRITE_METHODS and (
            csrf is None or not hmac.compare_digest(request.headers.get(CSRF_HEADER, "").encode(), csrf.encode())
        ):
            fail(403, f"missing or wrong {CSRF_HEADER} header: reload the page")
    g.account = account
    if request.endpoint is not None:  # None: no such route, answered 404/405 after this
        required = REQUIRED_ROLE.get(request.endpoint, "admin")
        if not account.can(required):
            fail(403, f"{account.role} {account.name!r} may not {request.method} {request.path}: it needs {required}")
    return None


def _login_redirect() -> Response:
    """401 for the page itself: a short HTML answer that sends the browser to /login."""
    html = '<!doctype html><meta http-equiv="refresh" content="0; url=/login"><a href="/login">Log in</a>\n'
    return Response(html, status=401, mimetype="text/html")


@bp.get("/login")
def login_page() -> Response:
    return send_from_directory(current_app.config["WEB_DIR"], "login.html", max_age=0)


@bp.post("/api/login")
def login() -> Response:
    """``{"name", "password"}`` -> 200 ``{"name", "role", "csrf"}`` and the session cookie."""
    if not accounts_on():
        fail(400, "this server runs in single-user mode (no accounts): nothing to log in to")
    body = json_body()
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or len(name) > 200 or len(password) > 1024:
        fail(400, 'send {"name": "...", "password": "..."}')
    address = request.remote_addr or "?"
    try:
        result = accounts.login(get_db(), name, password, address)
    except accounts.TooManyFailures as exc:
        log.warning("login refused (too many failures): name %s from %s", validate.brief(name), address)
        return retry_later(429, str(exc), exc.retry_after)
    if result is None:
        log.warning("failed login: name %s from %s", validate.brief(name), address)
        fail(401, "wrong name or password")
    account, session_id, csrf = result
    response = jsonify(name=account.name, role=account.role, csrf=csrf)
    secure = request.is_secure
    max_age = accounts.SESSION_SECONDS
    response.set_cookie(
        SESSION_COOKIE, session_id, httponly=True, samesite="Strict", secure=secure, path="/", max_age=max_age
    )
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, samesite="Strict", secure=secure, path="/", max_age=max_age)
    return response


@bp.post("/api/logout")
def logout() -> Response:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        accounts.logout(get_db(), session_id)
    response = Response(status=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@bp.get("/api/me")
def me() -> Response:
    """``{"accounts": false}`` in single-user mode, else the account's name and role."""
    account = current_account()
    if account is None:
        return jsonify(accounts=False)
    return jsonify(accounts=True, name=account.name, role=account.role)


def init_app(app: Flask) -> None:
    """Check every request's account (after ``security``'s cross-site checks) and add the login routes."""
    app.config.setdefault("ACCOUNTS", "auto")
    app.before_request(check_account)
    app.register_blueprint(bp)
