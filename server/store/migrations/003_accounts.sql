-- Version 2 -> 3: accounts with roles, login sessions, failed logins (rate limit).
-- Secrets are never stored: passwords as scrypt hashes, tokens and session ids as SHA-256.

CREATE TABLE account (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('annotator', 'reviewer', 'admin')),
    password_hash TEXT    NOT NULL,          -- scrypt$N$r$p$salt$key (hashlib.scrypt, base64)
    token_hash    TEXT    NOT NULL UNIQUE,   -- SHA-256 hex of the bearer token (256 random bits)
    created       TEXT    NOT NULL,
    updated       TEXT    NOT NULL
);

CREATE TABLE login_session (
    id_hash       TEXT    PRIMARY KEY,       -- SHA-256 hex of the session cookie's value
    account_id    INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    csrf          TEXT    NOT NULL,          -- what state-changing requests must send as X-CSRF-Token
    expires       REAL    NOT NULL           -- UNIX time
);

CREATE TABLE login_failure (
    name          TEXT    NOT NULL,
    address       TEXT    NOT NULL,          -- the client's IP address
    at            REAL    NOT NULL           -- UNIX time
);
CREATE INDEX login_failure_at ON login_failure (at);
