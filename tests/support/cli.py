"""``maskloop ...`` in the test's own process: ``maskloop.cli.main`` with its output captured.

A command run this way costs no interpreter start, no torch import and no model load after the
first (the process keeps its loaded model, as a server does); tests use a real subprocess only
where a separate process is the point (the console script's exit status, a SIGKILL, a Ray that
dies with its process).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``maskloop ARGS...`` as ``subprocess.run(..., capture_output=True, text=True)`` reports it
    (``returncode``, ``stdout``, ``stderr``), run by ``maskloop.cli.main`` in this process.

    ``env`` sets environment variables for the command's duration. An error the command does not
    turn into a one-line message (a bug) raises here, with its traceback, instead of exit 1.
    """
    from maskloop.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _environ(env or {}), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as exc:  # argparse's usage errors, --help, --version
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(["maskloop", *args], status, out.getvalue(), err.getvalue())
