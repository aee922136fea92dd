-- Version 4 -> 5: every change of a mask through the API leaves a trace.
-- annotation.editor_id: who last changed the mask's content (author_id: who made it).
-- annotation_history: append-only, one row per create, change and delete, with who and when;
-- a delete keeps the mask as it was (reviewers and admins list them), and the history outlives
-- the annotation (no foreign key to it) and the account (actor keeps the name it had then).

ALTER TABLE annotation ADD COLUMN editor_id INTEGER REFERENCES account (id) ON DELETE SET NULL;

CREATE TABLE annotation_history (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    annotation_id INTEGER NOT NULL,
    image_id      INTEGER NOT NULL REFERENCES image (id) ON DELETE CASCADE,
    action        TEXT    NOT NULL CHECK (action IN ('create', 'change', 'delete')),
    actor_id      INTEGER REFERENCES account (id) ON DELETE SET NULL,
    actor         TEXT,                  -- the account's name then (None in single-user mode)
    at            TEXT    NOT NULL,
    changed       TEXT,                  -- JSON list of the fields a change set
    category_id   INTEGER,               -- the mask after the action (before it, for a delete)
    status        TEXT,
    rle_counts    TEXT,
    rle_height    INTEGER,
    rle_width     INTEGER,
    area          REAL,
    author_id     INTEGER REFERENCES account (id) ON DELETE SET NULL
);
CREATE INDEX annotation_history_image ON annotation_history (image_id, annotation_id);
