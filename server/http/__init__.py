"""The HTTP layer: the Flask app factory, one blueprint per resource, request checks and auth.

The only layer that imports Flask; it calls ``server.jobs`` and ``server.store``, never the reverse.
"""
