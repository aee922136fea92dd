-- Version 3 -> 4: work assignment (who holds an image, until when), review, provenance.
-- An image is held by one account at a time: annotators while annotating (done = 0), reviewers
-- while reviewing (done = 1); a hold is a lease that ends at lease_until (UNIX time) unless renewed.

ALTER TABLE image ADD COLUMN held_by INTEGER REFERENCES account (id) ON DELETE SET NULL;
ALTER TABLE image ADD COLUMN lease_until REAL;
ALTER TABLE image ADD COLUMN done_by INTEGER REFERENCES account (id) ON DELETE SET NULL;
ALTER TABLE image ADD COLUMN review TEXT CHECK (review IN ('reviewed', 'rejected'));
ALTER TABLE image ADD COLUMN review_reason TEXT;
ALTER TABLE image ADD COLUMN reviewed_by INTEGER REFERENCES account (id) ON DELETE SET NULL;
CREATE INDEX image_held_by ON image (held_by);

-- provenance: who made the mask, who reviewed it (model and model_version say which model)
ALTER TABLE annotation ADD COLUMN author_id INTEGER REFERENCES account (id) ON DELETE SET NULL;
ALTER TABLE annotation ADD COLUMN reviewer_id INTEGER REFERENCES account (id) ON DELETE SET NULL;
ALTER TABLE annotation ADD COLUMN review TEXT CHECK (review IN ('reviewed', 'rejected'));
ALTER TABLE annotation ADD COLUMN review_reason TEXT;

-- every review decision, for per-annotator and per-reviewer rejection rates (engine/stats.py)
CREATE TABLE review_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id      INTEGER NOT NULL REFERENCES image (id) ON DELETE CASCADE,
    reviewer_id   INTEGER REFERENCES account (id) ON DELETE SET NULL,
    annotator_id  INTEGER REFERENCES account (id) ON DELETE SET NULL,  -- who had finished the image
    decision      TEXT    NOT NULL CHECK (decision IN ('reviewed', 'rejected')),
    reason        TEXT,
    masks         INTEGER NOT NULL,                                    -- accepted masks on the image then
    created       TEXT    NOT NULL
);
