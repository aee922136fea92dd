"""``maskloop serve``: the annotation page and API for a folder of images."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from maskloop.cli.options import add_folder_arguments
from maskloop.errors import UserError

if TYPE_CHECKING:
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
    """Export (or reuse) the decoder, start precomputing embeddings, and serve until interrupted."""
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
    app = create_app(config)
    cfg = app.config
    svc = app.extensions["maskloop"]
    report = svc.catalog.last_report
    if report is not None:
        for name, error in report.errors:
            print(f"maskloop: warning: {name}: {error}", file=sys.stderr)
        if report.skipped:
            names = ", ".join(report.skipped[:5]) + (
                f" and {len(report.skipped) - 5} more" if len(report.skipped) > 5 else ""
            )
            print(
                f"maskloop: warning: skipped {len(report.skipped)} file(s) that are not images by their name: {names}",
                file=sys.stderr,
            )
    manifest = svc.model.manifest()
    version = manifest["model_version"]
    svc.model.native_decoder(version)  # a cold page's first clicks are decoded here (server/decode.py)
    print(
        f"maskloop: decoder ready: {svc.model.version_onnx_dir(version)} (model version {version}; "
        f"{', '.join(manifest.get('decoders', {}))})",
        flush=True,
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
    n = svc.embeddings.progress()["total"]
    print(f"maskloop: {n} images in {cfg['DATA_DIR']} (work folder {cfg['WORKDIR']})", flush=True)
    with app.app_context():
        from maskloop.server.http.auth import accounts_on

        logins = accounts_on()
    if logins:
        print("maskloop: accounts are on: log in at /login (maskloop users add NAME --role R)", flush=True)
        url = url.split("?")[0]
    elif not is_loopback(host):
        print(f"maskloop: listening on {host}: every API call needs the token (in the URL below)", flush=True)
    print(f"maskloop: serving at {url}", flush=True)
    if cfg["PRECOMPUTE"]:
        threading.Thread(target=_show_precompute, args=(svc.embeddings,), name="maskloop-progress", daemon=True).start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        svc.embeddings.stop(5.0)
        server.close()
    return 0


def _show_precompute(embeddings: EmbeddingService) -> None:
    """A progress bar of the background embedding work on a terminal (nothing otherwise)."""
    from tqdm import tqdm

    progress = embeddings.progress()
    if progress["done"] >= progress["total"]:
        return
    with tqdm(
        total=progress["total"], initial=progress["done"], desc="embedding images", unit="img", disable=None
    ) as bar:
        while progress["done"] < progress["total"]:
            time.sleep(0.5)
            progress = embeddings.progress()
            bar.total = progress["total"]
            bar.update(progress["done"] - bar.n)
            if not progress["running"] and progress["done"] < progress["total"]:
                time.sleep(2.0)
