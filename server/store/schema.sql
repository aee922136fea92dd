-- maskloop's annotation store at version 2 (db.BASE_VERSION); db.MIGRATIONS upgrade it from there.
-- Masks are COCO compressed RLE (column-major, pycocotools); coordinates are pixels of the
-- image as shown, i.e. after EXIF orientation; bbox is [x, y, w, h], 0-indexed.

CREATE TABLE IF NOT EXISTS image (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    file_name     TEXT    NOT NULL UNIQUE,   -- path relative to the data folder, '/'-separated
    sha256        TEXT,                      -- content hash; NULL when the file cannot be read
    width         INTEGER,                   -- after EXIF orientation; NULL when unreadable
    height        INTEGER,
    orientation   INTEGER NOT NULL DEFAULT 1, -- EXIF orientation tag (1 = upright)
    format        TEXT,                      -- Pillow's format name (JPEG, PNG, ...)
    file_size     INTEGER,                   -- size and mtime decide whether a rescan re-reads it
    file_mtime_ns INTEGER,
    error         TEXT,                      -- why the file cannot be used; NULL when it can
    missing       INTEGER NOT NULL DEFAULT 0 CHECK (missing IN (0, 1)),
    done          INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    created       TEXT    NOT NULL,
    updated       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS image_sha256 ON image (sha256);

CREATE TABLE IF NOT EXISTS category (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    color         TEXT    NOT NULL,          -- '#rrggbb'
    supercategory TEXT,
    created       TEXT    NOT NULL,
    updated       TEXT    NOT NULL
);

CREATE TABLE IF NOT EXISTS annotation (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id        INTEGER NOT NULL REFERENCES image (id) ON DELETE CASCADE,
    category_id     INTEGER NOT NULL REFERENCES category (id) ON DELETE RESTRICT,
    rle_counts      TEXT    NOT NULL,        -- COCO compressed RLE, canonical (pycocotools encode)
    rle_height      INTEGER NOT NULL,
    rle_width       INTEGER NOT NULL,
    area            INTEGER NOT NULL CHECK (area > 0),
    bbox            TEXT    NOT NULL,        -- JSON [x, y, w, h] from pycocotools toBbox
    stage           TEXT    NOT NULL DEFAULT 'manual' CHECK (stage IN ('manual', 'semi', 'auto', 'import')),
    status          TEXT    NOT NULL DEFAULT 'accepted' CHECK (status IN ('proposed', 'accepted', 'rejected')),
    clicks          INTEGER CHECK (clicks >= 0),
    seconds         REAL    CHECK (seconds >= 0),
    prompts         TEXT,                    -- JSON, as the client sent it
    predicted_iou   REAL,                    -- the model's own quality estimate (automatic stages)
    stability_score REAL,
    model           TEXT,                    -- model id that produced the mask, if any
    model_version   TEXT,                    -- model version (engine/versions.py: 'base', 'v0001', ...) that produced it
    created         TEXT    NOT NULL,
    updated         TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS annotation_image ON annotation (image_id);
CREATE INDEX IF NOT EXISTS annotation_category ON annotation (category_id);
