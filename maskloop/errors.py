"""The one exception type whose message is meant for people."""


class UserError(Exception):
    """A problem the user can fix (bad argument, missing file, wrong checkpoint).

    The CLI prints ``maskloop: error: <message>`` and exits with status 2; the HTTP
    layer answers ``{"error": <message>}`` with a 4xx. Messages are one line and say
    what to do.
    """
