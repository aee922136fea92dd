-- Version 6 -> 7: mask quality ratings from 1 (nonsense) to 10 (pixel-perfect), the SAM paper's
-- human-study scale. One rating per person per mask: ``rater`` is the account's name ('' in
-- single-user mode), so a new rating replaces that person's; ``rater_id`` links the account while
-- it exists (NULL for ratings imported from a COCO file whose raters have no account here).

CREATE TABLE rating (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    annotation_id INTEGER NOT NULL REFERENCES annotation (id) ON DELETE CASCADE,
    rater         TEXT    NOT NULL,
    rater_id      INTEGER REFERENCES account (id) ON DELETE SET NULL,
    rating        INTEGER NOT NULL CHECK (rating >= 1 AND rating <= 10),
    rated         TEXT    NOT NULL,          -- when (UTC, ISO 8601)
    UNIQUE (annotation_id, rater)
);
CREATE INDEX rating_annotation ON rating (annotation_id);
