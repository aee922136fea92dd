"""Accounts: route x role, 401 without credentials, sessions with CSRF, bearer tokens, rate limit."""

from __future__ import annotations

import re
import time

import pytest

from maskloop.server.http import auth
from maskloop.server.store import accounts
from maskloop.server.store.db import open_database

BACKENDS = ("sqlite", "postgresql")
ROLES = ("annotator", "reviewer", "admin")
#: Query strings that keep a request cheap (the export would otherwise start its child process).
QUERY = {"export.coco": "?status=maybe"}


@pytest.fixture
def team(app, database) -> dict[str, accounts.NewAccount]:
    """One account per role in the app's store (which turns logins on)."""
    conn = open_database(database)
    try:
        return {role: accounts.add_account(conn, f"{role}-1", role) for role in ROLES}
    finally:
        conn.close()


def concrete(rule) -> str:
    """A URL for a route: ids that do not exist, so that an allowed request is a cheap 404 or 400."""
    path = re.sub(r"<int:[^>]+>", "999999", rule.rule)
    path = re.sub(r"<path:[^>]+>|<[^>]+>", "nothing.bin", path)
    return path + QUERY.get(rule.endpoint, "")


def routes(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, URL) of every route of the app."""
    out = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, concrete(rule)))
    return sorted(out)


def call(client, method: str, url: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = [] if method in auth.WRITE_METHODS else None  # a JSON array is never a valid body: no work is done
    return client.open(url, method=method, headers=headers, json=body)


def test_every_route_by_role(app, client, team):
    """Without credentials every route but the login page answers 401; each role gets exactly its routes."""
    checked = 0
    for endpoint, method, url in routes(app):
        if endpoint in auth.PUBLIC_ENDPOINTS:
            continue
        anonymous = call(client, method, url)
        assert anonymous.status_code == 401, (method, url, anonymous.status_code)
        assert call(client, method, url, "mlt_wrong").status_code == 401
        required = auth.REQUIRED_ROLE.get(endpoint, "admin")
        for role in ROLES:
            status = call(client, method, url, team[role].token).status_code
            allowed = accounts.RANK[role] >= accounts.RANK[required]
            assert (status != 403) if allowed else (status == 403), (role, method, url, status)
            assert status != 401
            checked += 1
    assert checked > 80
    endpoints = {endpoint for endpoint, _, _ in routes(app)}
    assert set(auth.REQUIRED_ROLE) <= endpoints  # no stale names
    # a route without a role needs admin: safe, but the page breaks for everyone else, so name each one
    assert endpoints - auth.PUBLIC_ENDPOINTS - set(auth.REQUIRED_ROLE) == set(), (
        "give the route a role in REQUIRED_ROLE"
    )


def test_login_assets_are_public_and_the_page_sends_you_there(client, team):
    assert client.get("/login").status_code == 200
    assert client.get("/web/js/login.js").status_code == 200
    assert client.get("/web/css/login.css").status_code == 200
    assert client.get("/web/js/app.js").status_code == 401
    page = client.get("/")
    assert page.status_code == 401 and b"url=/login" in page.data


def login(client, account: accounts.NewAccount):
    return client.post("/api/login", json={"name": account.account.name, "password": account.password})


def test_session_cookie_and_csrf(client, team):
    response = login(client, team["annotator"])
    assert response.status_code == 200
    body = response.get_json()
    assert body["role"] == "annotator" and body["csrf"]
    cookies = response.headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith(auth.SESSION_COOKIE + "="))
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/" in session
    csrf = next(c for c in cookies if c.startswith(auth.CSRF_COOKIE + "="))
    assert "HttpOnly" not in csrf and "SameSite=Strict" in csrf

    assert client.get("/api/me").get_json() == {"accounts": True, "name": "annotator-1", "role": "annotator"}
    taken = client.post("/api/work/next", headers={"X-CSRF-Token": body["csrf"]})
    image_id = taken.get_json()["image"]["id"]
    no_csrf = client.patch(f"/api/images/{image_id}", json={"status": "done"})
    assert no_csrf.status_code == 403 and "X-CSRF-Token" in no_csrf.get_json()["error"]
    wrong = client.patch(f"/api/images/{image_id}", json={"status": "done"}, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    ok = client.patch(f"/api/images/{image_id}", json={"status": "done"}, headers={"X-CSRF-Token": body["csrf"]})
    assert ok.status_code == 200 and ok.get_json()["status"] == "done"
    forbidden = client.post("/api/categories", json={"name": "x"}, headers={"X-CSRF-Token": body["csrf"]})
    assert forbidden.status_code == 403 and "needs admin" in forbidden.get_json()["error"]

    assert client.post("/api/logout", headers={"X-CSRF-Token": body["csrf"]}).status_code == 204
    assert client.get("/api/images").status_code == 401


def test_bearer_token_needs_no_csrf(client, team):
    headers = {"Authorization": f"Bearer {team['admin'].token}"}
    created = client.post("/api/categories", json={"name": "cat"}, headers=headers)
    assert created.status_code == 201


def test_wrong_passwords_are_rate_limited(client, team):
    name = team["reviewer"].account.name
    for _ in range(accounts.MAX_FAILURES_PER_NAME):
        assert client.post("/api/login", json={"name": name, "password": "guess"}).status_code == 401
    limited = login(client, team["reviewer"])  # even the right password waits now
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert login(client, team["admin"]).status_code == 200  # other names are not held up
    assert client.post("/api/login", json={"name": "nobody", "password": "x"}).status_code == 401


def test_attackers_on_many_addresses_cannot_lock_the_user_out(client, team, monkeypatch, caplog):
    """Issue 25: twelve wrong passwords for a name from each of three addresses, then more names
    from one of them. Each attacking address is refused (429) for that name, and for every name
    once it failed 20 times; the user's right password from an address that has not failed still
    logs in, only slowed down (at most ``MAX_NAME_DELAY`` s); every failure is logged with its address."""
    waits: list[float] = []
    real_login = accounts.login
    monkeypatch.setattr(accounts, "login", lambda *a, **k: real_login(*a, **k, sleep=waits.append))
    victim = team["reviewer"]
    name = victim.account.name

    def attempt(address: str, who: str, password: str):
        body = {"name": who, "password": password}
        return client.post("/api/login", json=body, environ_base={"REMOTE_ADDR": address})

    attackers = ("203.0.113.1", "203.0.113.2", "198.51.100.7")
    for address in attackers:
        codes = [attempt(address, name, "guess").status_code for _ in range(12)]
        assert codes == [401] * accounts.MAX_FAILURES_PER_NAME + [429] * (12 - accounts.MAX_FAILURES_PER_NAME)
        refused = attempt(address, name, victim.password)  # this address failed: refused even when right
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "failed login: name 'reviewer-1' from 203.0.113.2" in caplog.text

    waits.clear()
    home = attempt("192.0.2.10", name, victim.password)  # the user, from an address that never failed
    assert home.status_code == 200 and home.get_json()["name"] == name
    assert waits and 0 < max(waits) <= accounts.MAX_NAME_DELAY
    assert attempt("192.0.2.10", name, victim.password).status_code == 200  # and again

    # One address trying many names: limited per address, whatever the names.
    spray = "203.0.113.99"
    codes = [attempt(spray, f"user{i}", "guess").status_code for i in range(accounts.MAX_FAILURES_PER_ADDRESS + 2)]
    assert codes[: accounts.MAX_FAILURES_PER_ADDRESS] == [401] * accounts.MAX_FAILURES_PER_ADDRESS
    assert codes[accounts.MAX_FAILURES_PER_ADDRESS :] == [429, 429]
    assert attempt(spray, team["admin"].account.name, team["admin"].password).status_code == 429
    assert attempt("192.0.2.11", team["admin"].account.name, team["admin"].password).status_code == 200


def test_the_delay_grows_and_is_capped():
    delays = [accounts.name_delay(n) for n in range(40)]
    assert delays[: accounts.NAME_FAILURES_BEFORE_DELAY] == [0.0] * accounts.NAME_FAILURES_BEFORE_DELAY
    assert delays == sorted(delays) and max(delays) == accounts.MAX_NAME_DELAY <= 2.0


def test_secrets_are_stored_hashed(database, team):
    conn = open_database(database)
    rows = conn.execute("SELECT name, password_hash, token_hash FROM account").fetchall()
    conn.close()
    for name, password_hash, token_hash in rows:
        new = next(a for a in team.values() if a.account.name == name)
        assert new.password not in password_hash and password_hash.startswith("scrypt$")
        assert token_hash == accounts.digest(new.token) and new.token not in token_hash
        assert accounts.verify_password(new.password, password_hash)
        assert not accounts.verify_password(new.password + "x", password_hash)


def test_single_user_mode_is_the_default(client):
    assert client.get("/api/me").get_json() == {"accounts": False}
    assert client.get("/api/images").status_code == 200
    assert client.post("/api/login", json={"name": "a", "password": "b"}).status_code == 400


def test_users_command(tmp_path, capsys):
    from maskloop.cli import main

    db = f"sqlite:///{tmp_path / 'team.db'}"
    assert main(["users", "add", "ann", "--role", "annotator", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "user ann (annotator) created" in out
    password = re.search(r"^password: (\S+)$", out, re.M).group(1)
    token = re.search(r"^token: (\S+)$", out, re.M).group(1)
    conn = open_database(db)
    assert accounts.account_by_token(conn, token).name == "ann"
    assert accounts.login(conn, "ann", password, "127.0.0.1") is not None
    conn.close()
    assert main(["users", "add", "ann", "--role", "admin", "--db", db]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["users", "list", "--db", db]) == 0
    assert capsys.readouterr().out == "ann\tannotator\n"


def test_users_reset_and_remove(client, team, database, capsys):
    """``users reset`` gives a new password and token and ends the old ones and the sessions;
    ``users remove`` ends all logins and frees held images, renames the account (its masks name the
    old one) and frees the name for a new account."""
    from maskloop.cli import main

    annotator = team["annotator"]
    csrf = login(client, annotator).get_json()["csrf"]
    held = client.post("/api/work/next", headers={"X-CSRF-Token": csrf}).get_json()["image"]["id"]

    assert main(["users", "reset", "annotator-1", "--db", database]) == 0
    out = capsys.readouterr().out
    password = re.search(r"^password: (\S+)$", out, re.M).group(1)
    token = re.search(r"^token: (\S+)$", out, re.M).group(1)
    assert password != annotator.password and token != annotator.token
    assert client.get("/api/me").status_code == 401  # the session of before is gone
    assert call(client, "GET", "/api/me", annotator.token).status_code == 401
    assert login(client, annotator).status_code == 401
    fresh = client.post("/api/login", json={"name": "annotator-1", "password": password})
    assert fresh.status_code == 200
    assert call(client, "GET", "/api/me", token).get_json()["name"] == "annotator-1"
    csrf = fresh.get_json()["csrf"]
    assert client.post(f"/api/work/{held}/renew", headers={"X-CSRF-Token": csrf}).status_code == 200  # still held

    assert main(["users", "remove", "annotator-1", "--db", database]) == 0
    assert "annotator-1 (annotator) removed" in capsys.readouterr().out
    assert client.get("/api/me").status_code == 401
    assert call(client, "GET", "/api/me", token).status_code == 401
    assert client.post("/api/login", json={"name": "annotator-1", "password": password}).status_code == 401
    reviewer = call(client, "POST", "/api/work/next", team["reviewer"].token).get_json()["image"]
    assert reviewer["id"] == held  # the image it held is free again
    gone = f"annotator-1~removed-{annotator.account.id}"
    assert main(["users", "list", "--db", database]) == 0
    assert f"{gone}\tannotator\tremoved\n" in capsys.readouterr().out
    for action in ("remove", "reset"):
        assert main(["users", action, gone, "--db", database]) == 2
        assert "was removed" in capsys.readouterr().err
    # the name is free again: a new account of that name inherits nothing of the old one
    assert main(["users", "add", "annotator-1", "--role", "annotator", "--db", database]) == 0
    new_token = re.search(r"^token: (\S+)$", capsys.readouterr().out, re.M).group(1)
    assert call(client, "GET", "/api/me", new_token).get_json()["name"] == "annotator-1"
    conn = open_database(database)
    try:
        named = {a.name: a.id for a in accounts.list_accounts(conn)}
    finally:
        conn.close()
    assert named[gone] == annotator.account.id and named["annotator-1"] != annotator.account.id
    assert main(["users", "remove", "annotator-1", "--db", database]) == 0
    capsys.readouterr()
    assert main(["users", "reset", "nobody", "--db", database]) == 2
    assert "no user named 'nobody'" in capsys.readouterr().err

    for name in ("reviewer-1", "admin-1"):  # the last one gone: single-user mode again
        assert main(["users", "remove", name, "--db", database]) == 0
    assert "single-user mode again" in capsys.readouterr().out
    assert client.get("/api/me").get_json() == {"accounts": False}


def test_bearer_tokens_expire_and_reset_renews_them(client, team, database, monkeypatch, capsys):
    from maskloop.cli import main

    conn = open_database(database)
    try:
        old = accounts.add_account(conn, "old-token", "annotator", days=-1)  # already past its expiry
    finally:
        conn.close()
    r = call(client, "GET", "/api/me", old.token)
    assert r.status_code == 401 and "expired: maskloop users reset old-token" in r.get_json()["error"]
    assert call(client, "GET", "/api/me", team["annotator"].token).status_code == 200  # 90 days by default
    monkeypatch.setenv("MASKLOOP_TOKEN_DAYS", "30")
    assert main(["users", "reset", "old-token", "--db", database]) == 0
    token = re.search(r"^token: (\S+)$", capsys.readouterr().out, re.M).group(1)
    assert call(client, "GET", "/api/me", token).get_json()["name"] == "old-token"
    conn = open_database(database)
    try:
        expires = conn.execute("SELECT token_expires FROM account WHERE name = 'old-token'").fetchone()[0]
    finally:
        conn.close()
    assert abs(expires - (time.time() + 30 * 86400)) < 120
