"""``maskloop serve``: the annotation page and API for a folder of images."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maskloop.cli.options import add_folder_arguments
from maskloop.errors import UserError

if TYPE_CHECKING:
    from maskloop.server.jobs.catalog import ScanReport
    from maskloop.server.jobs.embeddings import EmbeddingService


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the ``maskloop`` parser."""
    p = subparsers.add_parser(
        "serve",
        help="run the annotation server for a folder of images",
        description="Serve the annotation page and API for a folder of images (images are never modified).",
    )
    add_folder_arguments(p)
    p.add_argument("--host", help="address to bind (default 127.0.0.1; any other needs a token)")
    p.add_argument("--port", type=int, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--model-type", metavar="T", help="vit_t (default), vit_b, vit_l or vit_h")
    p.add_argument("--checkpoint", metavar="P", help="SAM checkpoint file (default: the built-in vit_t)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where embeddings are computed (default auto)")
    p.add_argument(
        "--token", metavar="T", help="require this token on every API call (generated for a non-loopback --host)"
    )
    p.add_argument("--no-precompute", action="store_true", help="embed images only when they are opened")
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the image encoder on CUDA (faster after a 5-60 s first batch)",
    )
    p.add_argument(
        "--retrain-every",
        type=int,
        metavar="N",
        help="start a training run (maskloop train) after every N newly accepted masks (default: never)",
    )
    p.set_defaults(func=serve)


def _config(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    flags = {"DATA_DIR": args.data, "WORKDIR": args.workdir, "DATABASE": args.db}
    flags.update(extra)
    return {k: v for k, v in flags.items() if v is not None}


def serve(args: argparse.Namespace) -> int:
    """Open the folder, make sure the decoder is exported (once per model, in the user's cache),
    listen, then open the server's decoder, load the model and precompute embeddings in the
    background; serve until interrupted.

    It says what it does: a first line at once, a line for any step over two seconds, and the URL.
    """
    from maskloop.cli.progress import say, slow_step
    from maskloop.paths import SAMPLE_IMAGES

    # The first line comes before the imports and the scan (seconds on a busy machine).
    data = Path(args.data or os.environ.get("MASKLOOP_DATA_DIR") or SAMPLE_IMAGES).expanduser()
    workdir = args.workdir or os.environ.get("MASKLOOP_WORKDIR")
    say(f"opening {data}{_image_count(data, workdir)}…")

    import waitress

    from maskloop.server.http.app import create_app
    from maskloop.server.http.security import is_loopback

    config = _config(
        args,
        HOST=args.host,
        PORT=args.port,
        MODEL_TYPE=args.model_type,
        CHECKPOINT=args.checkpoint,
        DEVICE=args.device,
        TOKEN=args.token,
    )
    if args.no_precompute:
        config["PRECOMPUTE"] = False
    if args.compile:
        config["COMPILE"] = True
    if args.retrain_every is not None:
        if args.retrain_every < 1:
            raise UserError("--retrain-every must be at least 1")
        config["RETRAIN_EVERY"] = args.retrain_every
    with slow_step("reading the folder and its store"):
        app = create_app(config, start_work=False)
    cfg = app.config
    svc = app.extensions["maskloop"]
    _report_scan(svc.catalog.last_report)
    n = svc.embeddings.progress()["total"]
    say(f"{n} images in {cfg['DATA_DIR']} (work folder {cfg['WORKDIR']})")
    version = svc.model.active_version()
    with slow_step(
        f"preparing the decoder (an ONNX export the first time a model is used, kept for every folder in {cfg['ONNX_DIR']})"
    ):
        manifest = svc.model.manifest(version)
    say(
        f"decoder ready: {svc.model.version_onnx_dir(version)} (model version {version}; "
        f"{', '.join(manifest.get('decoders', {}))})"
    )
    host = str(cfg["HOST"])
    try:
        server = waitress.create_server(
            app, host=host, port=int(cfg["PORT"]), threads=int(cfg["THREADS"]), ident="maskloop"
        )
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{cfg['PORT']}: {exc.strerror or exc} (pass --port N)") from None
    shown = host
    if host in ("0.0.0.0", "::", ""):  # every interface: show a name others can reach
        import socket

        shown = socket.gethostname()
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{getattr(server, 'effective_port', cfg['PORT'])}/"
    if cfg["TOKEN"]:
        url += f"?token={cfg['TOKEN']}"
    with app.app_context():
        from maskloop.server.http.auth import accounts_on

        logins = accounts_on()
    if logins:
        say("accounts are on: log in at /login (maskloop users add NAME --role R)")
        url = url.split("?")[0]
    elif not is_loopback(host):
        say(f"listening on {host}: every API call needs the token (in the URL below)")
    say(f"ready at {url}")
    threading.Thread(target=_background, args=(app, version), name="maskloop-start", daemon=True).start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        svc.embeddings.stop(5.0)
        server.close()
    return 0


def _image_count(data: Path, workdir: str | None) -> str:
    """`` (N images)`` by the files' names (a quick walk, before the scan reads them); empty when the
    folder is missing (the scan then says so)."""
    from maskloop.server.jobs.catalog import walk_images

    if not data.is_dir():
        return ""
    exclude = Path(workdir).expanduser() if workdir else data / ".maskloop"
    n = len(walk_images(data, exclude)[0])
    return f" ({n} image{'s' if n != 1 else ''})"


def _report_scan(report: ScanReport | None) -> None:
    """One stderr warning per unusable image; one quiet stdout line counting the files that are not
    images (a folder's README, LICENSE* and ``*.md`` are not counted)."""
    from maskloop.cli.progress import say
    from maskloop.server.jobs.catalog import is_document

    if report is None:
        return
    for name, error in report.errors:
        say(f"warning: {name}: {error}", sys.stderr)
    others = [name for name in report.skipped if not is_document(name)]
    if others:
        names = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        say(f"{len(others)} file{'s' if len(others) != 1 else ''} not listed (not images by their name): {names}")


def _background(app: Any, version: str) -> None:  # the Flask app (only the HTTP layer imports flask)
    """After the server listens (torch is not imported before): open the server's decoder, which
    answers a cold page's first clicks (server/decode.py; a click that comes sooner waits for it),
    then with ``PRECOMPUTE`` load the model, start the embedding worker and show its progress. A
    line for each step that takes longer than two seconds."""
    from maskloop.cli.progress import slow_step
    from maskloop.server.http.app import start_background_work

    svc = app.extensions["maskloop"]
    with slow_step("opening the decoder for early clicks"):
        svc.model.native_decoder(version)
    if not app.config["PRECOMPUTE"]:
        return
    start_background_work(app)  # the worker loads the model before its first batch
    progress = svc.embeddings.progress()
    if progress["done"] < progress["total"]:
        with slow_step(f"loading the model ({svc.model.model_type})"):
            svc.model.encoder()  # the worker's model (one per process): waits for it, or loads it
    _show_precompute(svc.embeddings)


def _show_precompute(embeddings: EmbeddingService) -> None:
    """The background embedding work's progress: a tqdm bar on a terminal, else a line every ten
    seconds and one when it is done (nothing when every image was embedded already)."""
    from tqdm import tqdm

    from maskloop.cli.progress import REPEAT_EVERY, say

    progress = embeddings.progress()
    if progress["done"] >= progress["total"]:
        return
    start = last_line = time.monotonic()
    with tqdm(
        total=progress["total"], initial=progress["done"], desc="embedding images", unit="img", disable=None
    ) as bar:
        while progress["done"] < progress["total"]:
            time.sleep(0.5)
            progress = embeddings.progress()
            bar.total = progress["total"]
            bar.update(progress["done"] - bar.n)
            if bar.disable and time.monotonic() - last_line >= REPEAT_EVERY:
                say(f"embedding images: {progress['done']} of {progress['total']}")
                last_line = time.monotonic()
            if not progress["running"] and progress["done"] < progress["total"]:
                time.sleep(2.0)
    if bar.disable:
        say(f"embeddings ready: {progress['total']} images ({time.monotonic() - start:.0f} s)")
