"""Sub-commands of the server area: ``serve``, ``export-coco``, ``import-coco``."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from maskloop.errors import UserError


def add_db_argument(parser: argparse.ArgumentParser, default: object = None) -> None:
    """The ``--db URL`` option of every command that touches the store."""
    parser.add_argument(
        "--db",
        metavar="URL",
        default=default,
        help="the store: sqlite:///PATH or postgresql://USER@HOST:PORT/DB (default: a SQLite file WORKDIR/maskloop.db)",
    )


def _add_folder_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR", help="folder of images (default: maskloop's sample_images/)")
    parser.add_argument(
        "--workdir", metavar="W", help="where the database, embeddings and decoder live (default: DIR/.maskloop)"
    )
    add_db_argument(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve``, ``export-coco`` and ``import-coco`` to the ``maskloop`` parser."""
    p = subparsers.add_parser(
        "serve",
        help="run the annotation server for a folder of images",
        description="Serve the annotation page and API for a folder of images (images are never modified).",
    )
    _add_folder_args(p)
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

    p = subparsers.add_parser(
        "export-coco",
        help="write the annotations as COCO JSON",
        description="Write the accepted annotations of a folder as COCO JSON.",
    )
    _add_folder_args(p)
    p.add_argument("--out", metavar="FILE", required=True, help="output file ('-' for standard output)")
    p.add_argument(
        "--format",
        choices=["rle", "polygon"],
        default="rle",
        help="rle (exact, default) or polygon (masks with holes stay RLE)",
    )
    p.add_argument(
        "--tolerance", type=float, default=0.0, help="polygon simplification in pixels (default 0: exact outline)"
    )
    p.add_argument("--status", default="accepted", help="accepted (default), proposed, rejected, a comma list, or all")
    p.add_argument("--review", choices=["reviewed", "rejected", "unreviewed"], help="only masks with this review")
    p.set_defaults(func=export_coco_command)

    p = subparsers.add_parser(
        "import-coco",
        help="bring COCO annotations into a folder's store",
        description="Import categories and annotations (polygons, RLE) from a COCO JSON file, "
        "matching images by file name. All or nothing; "
        "annotations already in the store are skipped.",
    )
    p.add_argument("file", metavar="FILE", help="COCO JSON file")
    _add_folder_args(p)
    p.add_argument(
        "--as-proposals", action="store_true", help="store them as proposals to review, not as accepted masks"
    )
    p.add_argument("--skip-missing-images", action="store_true", help="skip annotations of images not in the folder")
    p.set_defaults(func=import_coco_command)


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


def _show_precompute(embeddings) -> None:
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


def export_coco_command(args: argparse.Namespace) -> int:
    from maskloop.server.jobs.coco import STATUSES, export_coco
    from maskloop.server.jobs.project import open_store

    conn = open_store(args.data, args.workdir, db=args.db).conn
    statuses = STATUSES if args.status == "all" else tuple(s.strip() for s in args.status.split(","))
    try:
        data = export_coco(
            conn, fmt=args.format, tolerance=args.tolerance, statuses=statuses, progress=True, review=args.review
        )
    finally:
        conn.close()
    text = json.dumps(data, separators=(",", ":"))
    if args.out == "-":
        sys.stdout.write(text + "\n")
    else:
        out = Path(args.out)
        try:
            out.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
        print(
            f"maskloop: wrote {len(data['annotations'])} annotations on {len(data['images'])} images to {out}",
            file=sys.stderr,
        )
    return 0


def import_coco_command(args: argparse.Namespace) -> int:
    from maskloop.server.jobs.coco import import_coco

    path = Path(args.file)
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"COCO file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise UserError(f"{path} is nested too deeply to be a COCO file") from None
    except ValueError as exc:  # e.g. an integer literal beyond Python's 4300-digit limit
        raise UserError(f"{path} is not usable JSON: {str(exc).splitlines()[0]}") from None
    from maskloop.server.jobs.project import open_store

    conn = open_store(args.data, args.workdir, db=args.db).conn
    try:
        report = import_coco(conn, coco, as_proposals=args.as_proposals, skip_missing_images=args.skip_missing_images)
    finally:
        conn.close()
    kind = "proposals" if args.as_proposals else "accepted annotations"
    print(
        f"maskloop: imported {report.annotations} {kind} on {report.images_matched} images"
        + (f"; new categories: {', '.join(report.categories_created)}" if report.categories_created else "")
    )
    if report.annotations_already_stored:
        print(
            f"maskloop: skipped {report.annotations_already_stored} annotations already in the store "
            "(same image, mask and category)"
        )
    if report.annotations_skipped:
        print(
            f"maskloop: skipped {report.annotations_skipped} annotations of {len(report.images_not_found)} images "
            "not in the folder",
            file=sys.stderr,
        )
    return 0
