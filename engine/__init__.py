"""SAM's data engine beyond the page: automatic masks, boxes to masks, evaluation, statistics."""
