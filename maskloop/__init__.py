"""maskloop: interactive annotation with Segment Anything."""

__version__ = "0.1.0"
