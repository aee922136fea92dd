-- Version 5 -> 6: categories in an order people choose (the page's number keys follow it).
-- NULL: by id, as before; a reorder numbers every category, and new ones come last.
ALTER TABLE category ADD COLUMN position INTEGER;
