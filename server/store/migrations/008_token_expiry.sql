-- Version 7 -> 8: bearer tokens expire (``users reset`` gives a new one with a new expiry).
-- UNIX time; NULL (tokens made before this version): expires TOKEN_DAYS after the account's
-- last credential change (``updated``).
ALTER TABLE account ADD COLUMN token_expires REAL;
