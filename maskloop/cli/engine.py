"""Data-engine sub-commands: ``evaluate``, ``boxes-to-masks`` (and, with the server's store, ``propose``/``auto``/``stats``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from maskloop.cli.serve import add_db_argument
from maskloop.errors import UserError

if TYPE_CHECKING:
    import numpy as np

DECODERS = ("torch", "onnx", "onnx-int8")


def register(subparsers: argparse._SubParsersAction) -> None:
    from maskloop.cli import learn as learn_commands
    from maskloop.cli.model import add_model_arguments

    ev = subparsers.add_parser(
        "evaluate", help="simulated interactive segmentation on a COCO ground truth (mIoU@k, NoC@85/90, box mIoU)"
    )
    ev.add_argument("--coco", type=Path, required=True, help="COCO ground truth with polygons or RLE")
    ev.add_argument("--images", type=Path, required=True, help="folder the COCO file_names are relative to")
    ev.add_argument("--max-clicks", type=int, default=20, help="clicks per object (default: %(default)s)")
    ev.add_argument(
        "--decoder",
        choices=DECODERS,
        default="torch",
        help="torch: PyTorch decoder on fp32 embeddings; onnx / onnx-int8: the browser's exported decoder on fp16 embeddings",
    )
    ev.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ev.add_argument(
        "--data",
        type=Path,
        default=None,
        help="a maskloop project folder: evaluate one of its model versions (its model type and checkpoint)",
    )
    ev.add_argument(
        "--model-version",
        default=None,
        metavar="V",
        help="with --data: a version name (v0002), active, or base (default: active)",
    )
    add_model_arguments(ev)
    ev.set_defaults(func=cmd_evaluate)

    bx = subparsers.add_parser(
        "boxes-to-masks", help="turn every box of a COCO detection file into a mask (box prompt)"
    )
    bx.add_argument("--coco", type=Path, required=True, help="COCO file whose annotations have bbox")
    bx.add_argument("--data", type=Path, required=True, help="folder the COCO file_names are relative to")
    bx.add_argument("--out", type=Path, required=True, help="COCO file to write, with RLE masks")
    bx.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    add_model_arguments(bx)
    bx.set_defaults(func=cmd_boxes_to_masks)

    register_store_commands(subparsers)
    learn_commands.register(subparsers)


class EngineContext:
    """The model, embedder and decoder a command needs, built once."""

    def __init__(self, args: argparse.Namespace, decoder_kind: str = "torch") -> None:
        from maskloop.engine.predictors import make_decoder
        from maskloop.exporter.embedding import ImageEmbedder, resolve_device, resolve_precision
        from maskloop.exporter.registry import load_sam

        device = resolve_device(args.device)
        model_type, checkpoint = args.model_type, args.checkpoint
        self.model_version = "base"
        project = getattr(args, "data", None) if hasattr(args, "model_version") else None
        if project is not None:  # a project's model: its checkpoint, and one of its versions' decoder
            from maskloop.engine.versions import ModelVersions
            from maskloop.server.jobs.project import open_store

            store = open_store(project, None, scan=False, progress=False, db=getattr(args, "db", None))
            model_type, checkpoint = store.config["MODEL_TYPE"], store.config["CHECKPOINT"]
            versions = ModelVersions(store.config["MODELS_DIR"])
            store.close()
            self.model_version = versions.resolve(args.model_version or "active")
        elif getattr(args, "model_version", None):
            raise UserError("--model-version needs --data (the project whose versions it names)")
        self.model_type = model_type
        self.model = load_sam(model_type, checkpoint, device=device)
        self.embedder = ImageEmbedder(
            self.model, device=device, precision=resolve_precision("auto", model_type, device)
        )
        self.fp16_embeddings = decoder_kind != "torch"
        export_dir = None
        if project is not None and self.model_version != "base":
            from maskloop.engine.versions import with_mask_decoder

            self.model = with_mask_decoder(self.model, versions.decoder_state(self.model_version)).eval()
            if decoder_kind != "torch":
                export_dir = versions.onnx_dir(self.model_version)
        elif decoder_kind != "torch":
            from maskloop.exporter.onnx_export import ensure_decoder
            from maskloop.paths import cache_dir

            export_dir = cache_dir() / "decoders" / model_type
            ensure_decoder(model_type, checkpoint, export_dir, model=self.model)
        self.decoder = make_decoder(decoder_kind, self.model, export_dir)

    def embed(self, path: Path):
        """(embedding [1,256,64,64] float32, (H, W)) of an image file, as the page would get it."""
        import numpy as np

        from maskloop.exporter.embedding import load_image_rgb

        image = load_image_rgb(path)
        embedding = self.embedder.embed([image])
        if self.fp16_embeddings:  # what the server sends the browser
            embedding = embedding.astype(np.float16).astype(np.float32)
        return embedding, image.shape[:2]


def _progress(desc: str):
    from tqdm import tqdm

    return lambda it, total=None: tqdm(
        it if total is not None else list(it), total=total, desc=desc, unit="image", file=sys.stderr, disable=None
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from maskloop.engine.dataset import iter_ground_truth, load_coco
    from maskloop.engine.evaluate import evaluate

    if args.max_clicks < 1:
        raise UserError("--max-clicks must be at least 1")
    coco = load_coco(args.coco)
    if not args.images.is_dir():
        raise UserError(f"--images folder not found: {args.images}")
    ctx = EngineContext(args, args.decoder)
    samples = ((ctx.embed(gt.path)[0], gt.masks) for gt in iter_ground_truth(coco, args.images))
    summary = evaluate(samples, ctx.decoder, args.max_clicks, progress=_progress("evaluate")).summary()
    summary["decoder"] = args.decoder
    summary["model_type"] = ctx.model_type
    summary["model_version"] = ctx.model_version
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"objects: {summary['objects']}   decoder: {args.decoder}   model: {ctx.model_type} ({ctx.model_version})")
    for k in (1, 2, 3, 5, 10, 20):
        if k <= len(summary["miou_at_clicks"]):
            print(f"mIoU after {k:2d} click{'s' if k > 1 else ' '}: {summary['miou_at_clicks'][k - 1]:.4f}")
    print(f"NoC@85: {summary['noc85']}   NoC@90: {summary['noc90']}   box mIoU: {summary['box_miou']}")
    return 0


def cmd_boxes_to_masks(args: argparse.Namespace) -> int:
    from maskloop.engine.boxes import boxes_to_masks
    from maskloop.engine.dataset import load_coco

    coco = load_coco(args.coco)
    for i, ann in enumerate(coco.dataset["annotations"]):
        box = ann.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and box[2] > 0 and box[3] > 0):
            raise UserError(f"annotation {i} (id {ann.get('id')}) has no usable bbox [x, y, w, h]: {box!r}")
    ctx = EngineContext(args)
    out = boxes_to_masks(coco.dataset, args.data, ctx.decoder, ctx.embed, progress=_progress("boxes-to-masks"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out))
    print(f"wrote {len(out['annotations'])} masks to {args.out}")
    return 0


def register_store_commands(subparsers: argparse._SubParsersAction) -> None:
    """``propose``, ``auto`` and ``stats``: the data engine on a folder's annotation store."""

    def folder_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", type=Path, default=None, help="folder of images (default: maskloop's sample_images/)")
        p.add_argument(
            "--workdir", type=Path, default=None, help="database/embeddings folder (default: DATA/.maskloop)"
        )
        add_db_argument(p)

    def ray_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--ray",
            nargs="?",
            const="local",
            default=None,
            metavar="ADDRESS",
            help="run as a Ray Data pipeline on the cluster at ADDRESS (host:port of `ray start --head`), "
            "or on a local Ray started for the run when ADDRESS is left out",
        )

    def generator_args(p: argparse.ArgumentParser) -> None:
        from maskloop.engine.generator_settings import GeneratorSettings

        sam = GeneratorSettings()  # the defaults are the generator's own (SAM's)
        p.add_argument(
            "--points-per-side",
            type=int,
            default=sam.points_per_side,
            help="grid of point prompts per side (default: %(default)s)",
        )
        p.add_argument(
            "--crop-layers", type=int, default=sam.crop_n_layers, help="zoomed-in crop layers (default: %(default)s)"
        )
        p.add_argument(
            "--pred-iou-thresh",
            type=float,
            default=sam.pred_iou_thresh,
            help="keep masks with predicted IoU above (default: %(default)s)",
        )
        p.add_argument(
            "--stability-thresh",
            type=float,
            default=sam.stability_score_thresh,
            help="keep masks with stability above (default: %(default)s)",
        )
        p.add_argument(
            "--min-region-area",
            type=int,
            default=sam.min_mask_region_area,
            help="remove holes/islands smaller than this, px (default: %(default)s)",
        )
        p.add_argument("--category", default="object", help="category of the stored masks (default: %(default)s)")
        p.add_argument("--device", default=None, help="auto, cpu or cuda (default: the folder's configuration, auto)")

    pr = subparsers.add_parser(
        "propose", help="semi-automatic stage: store confident automatic masks as proposals to review"
    )
    folder_args(pr)
    generator_args(pr)
    pr.add_argument(
        "--image",
        action="append",
        default=None,
        metavar="ID_OR_FILE",
        help="only this image (id or file name); repeatable (default: every image)",
    )
    pr.set_defaults(func=cmd_propose)

    au = subparsers.add_parser(
        "auto", help="fully automatic stage: annotate every image, write COCO with scores (resumable)"
    )
    folder_args(au)
    generator_args(au)
    au.add_argument(
        "--out", type=Path, required=True, help="COCO file to write (predicted_iou, stability_score per mask)"
    )
    ray_arg(au)
    au.add_argument(
        "--restart",
        action="store_true",
        help="delete the automatic masks of earlier runs and annotate every image anew with the active model "
        "version (needed after another version was activated)",
    )
    au.set_defaults(func=cmd_auto)

    em = subparsers.add_parser("embed", help="compute every image's embedding into the server's cache (resumable)")
    folder_args(em)
    em.add_argument("--device", default=None, help="auto, cpu or cuda (default: the folder's configuration, auto)")
    ray_arg(em)
    em.set_defaults(func=cmd_embed)

    st = subparsers.add_parser(
        "stats", help="per-stage statistics: masks per image, seconds and clicks per mask, acceptance"
    )
    folder_args(st)
    st.add_argument("--json", action="store_true", help="print JSON instead of a table")
    st.set_defaults(func=cmd_stats)


class StoreContext:
    """A folder's store, the model the server would use for it, and its embedding cache."""

    def __init__(self, args: argparse.Namespace, load_model: bool = True) -> None:
        from maskloop.engine.versions import ModelVersions
        from maskloop.server.jobs.project import open_store

        self.store = open_store(args.data, args.workdir, scan=True, progress=False, db=getattr(args, "db", None))
        self.versions = ModelVersions(self.store.config["MODELS_DIR"])
        if load_model:
            self.load_model(args)

    def load_model(self, args: argparse.Namespace) -> None:
        """The folder's model service and embedding cache (the weights load on first use)."""
        from maskloop.server.jobs.embeddings import EmbeddingService
        from maskloop.server.jobs.model import ModelService

        cfg = self.store.config
        self.device_request = getattr(args, "device", None) or cfg["DEVICE"]
        self.model = ModelService.from_config(cfg, device=self.device_request)
        # No worker thread is started: a missing embedding is computed in this thread and cached.
        self.embeddings = EmbeddingService(self.model, Path(cfg["EMBEDDINGS_DIR"]))

    def embedding_of(self, row, path: Path):
        """The image's embedding from the server's cache, computed and cached if absent."""
        from maskloop.server.jobs.embeddings import EmbeddingError
        from maskloop.server.jobs.proposals import embedding_from_npy

        try:
            return embedding_from_npy(self.embeddings.get(row["sha256"], path, int(row["id"])))
        except EmbeddingError as exc:
            raise UserError(str(exc)) from None

    def annotated_embedding(self, image) -> np.ndarray:
        """``embedding_of`` for ``engine.learn``: an ``AnnotatedImage``'s cached embedding (float32)."""
        return self.embedding_of({"sha256": image.sha256, "id": image.image_id}, self.store.data_dir / image.file_name)

    @staticmethod
    def settings(args: argparse.Namespace):
        import math

        from maskloop.engine.generator_settings import GeneratorSettings

        if not 1 <= args.points_per_side <= 256:
            raise UserError(f"--points-per-side must be from 1 to 256 (SAM uses 32), got {args.points_per_side}")
        if not 0 <= args.crop_layers <= 4:
            raise UserError(f"--crop-layers must be from 0 to 4, got {args.crop_layers}")
        for flag, value in (("--pred-iou-thresh", args.pred_iou_thresh), ("--stability-thresh", args.stability_thresh)):
            if not math.isfinite(value):
                raise UserError(f"{flag} must be a finite number, got {value}")
        if not 0 <= args.min_region_area <= 2**31:
            raise UserError(f"--min-region-area must be from 0 to 2^31 pixels, got {args.min_region_area}")
        return GeneratorSettings(
            points_per_side=args.points_per_side,
            crop_n_layers=args.crop_layers,
            pred_iou_thresh=args.pred_iou_thresh,
            stability_score_thresh=args.stability_thresh,
            min_mask_region_area=args.min_region_area,
        )

    def stage(self, settings, stage: str, status: str, version: str | None = None):
        from maskloop.server.jobs.proposals import MaskStage

        version = version or self.model.active_version()
        generator = self.model.generator(settings, version)
        return MaskStage(generator, self.model.model_id, stage, status, model_version=version)

    def report_unusable(self) -> None:
        """One stderr line per image file the scan found unusable (they are skipped)."""
        from maskloop.server.jobs.catalog import list_images

        for row in list_images(self.store.conn):
            if row["error"] and not row["missing"]:
                print(f"skipped {row['file_name']}: {row['error']}", file=sys.stderr)

    def on_ray(self, rows: list, address: str, settings):
        """``engine.distributed.run`` for these image rows; ``address`` "local" starts a local Ray. Leaves Ray at the end."""
        from maskloop.server.jobs import distributed

        ray_address = None if address == "local" else address  # None: a local Ray for this run
        resources = distributed.connect(ray_address)
        device = self.device_request
        if device == "auto":  # the workers', not this machine's
            device = "cuda" if resources.get("GPU", 0) else "cpu"
        spec = distributed.ModelSpec(
            self.model.model_type,
            self.model.checkpoint,
            device,
            self.model.precision,
            self.model.model_id,
            models_dir=str(self.versions.root),
            model_version=self.model.active_version(),
        )
        items = [
            {
                "image_id": int(r["id"]),
                "file_name": r["file_name"],
                "path": str(self.store.data_dir / r["file_name"]),
                "sha256": r["sha256"],
            }
            for r in rows
        ]
        try:
            yield from distributed.run(items, spec, self.embeddings.cache.dir.parent, settings, ray_address)
        finally:
            distributed.shutdown()

    def usable_images(self, selectors: list[str] | None = None) -> list:
        from maskloop.server.jobs.catalog import list_images

        rows = [r for r in list_images(self.store.conn) if not r["error"] and not r["missing"]]
        if not selectors:
            return rows
        chosen = []
        for sel in selectors:
            match = [r for r in rows if str(r["id"]) == sel or r["file_name"] == sel]
            if not match:
                raise UserError(f"no usable image {sel!r} in {self.store.data_dir} (give an id or a file name)")
            chosen += match
        return chosen

    def category(self, name: str) -> int:
        from maskloop.server.store.categories import ensure_category
        from maskloop.server.store.db import transaction

        with transaction(self.store.conn):
            return ensure_category(self.store.conn, name)


def cmd_propose(args: argparse.Namespace) -> int:
    from maskloop.server.jobs.proposals import run_stage

    ctx = StoreContext(args)
    images = ctx.usable_images(args.image)
    stage = ctx.stage(ctx.settings(args), "semi", "proposed")
    runs = run_stage(
        stage,
        ctx.store.conn,
        images,
        ctx.store.data_dir,
        ctx.embedding_of,
        ctx.category(args.category),
        progress=_progress("propose"),
    )
    print(
        f"stored {sum(len(r.stored) for r in runs)} proposals on {len(runs)} images "
        f"({sum(r.generated for r in runs)} masks generated, duplicates of existing masks dropped)"
    )
    return 0


class AutoDone:
    """The images ``auto`` has finished, as ``<model_id>@<version>:<sha256>`` in WORKDIR/auto-done.json
    (rewritten atomically): a resume skips only what the same model version annotated."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: set[str] = set(json.loads(path.read_text())) if path.is_file() else set()

    @staticmethod
    def key(model_id: str, version: str, sha256: str) -> str:
        return f"{model_id}@{version}:{sha256}"

    def add(self, key: str) -> None:
        self.keys.add(key)
        self._write()

    def clear(self) -> None:
        self.keys.clear()
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(self.keys)))
        tmp.replace(self.path)


def other_version_masks(conn, model_id: str, version: str) -> dict[str, int]:
    """Automatic masks in the store made by another model or model version: ``{"<model>@<version>": count}``."""
    rows = conn.execute(
        "SELECT model, model_version, count(*) FROM annotation WHERE stage = 'auto' "
        "AND NOT (COALESCE(model, '') = ? AND COALESCE(model_version, '') = ?) "
        "GROUP BY model, model_version ORDER BY model, model_version",
        (model_id, version),
    ).fetchall()
    return {f"{r[0]}@{r[1]}": int(r[2]) for r in rows}


def restart_auto(conn, done: AutoDone) -> int:
    """Forget every earlier ``auto`` run: delete the stage's masks and the resume record; returns the masks deleted."""
    from maskloop.server.store.db import transaction

    with transaction(conn):
        deleted = conn.execute("SELECT count(*) FROM annotation WHERE stage = 'auto'").fetchone()[0]
        conn.execute("DELETE FROM annotation WHERE stage = 'auto'")
    done.clear()
    return int(deleted)


def cmd_auto(args: argparse.Namespace) -> int:
    """Annotate every image not yet done by this stage (state in WORKDIR/auto-done.json), then write COCO.

    A run resumes only what the active model version annotated; when the store already holds
    automatic masks of another version it stops (the COCO file would mix two models' masks
    silently) until ``--restart`` deletes them or that version is activated again.
    """
    from maskloop.server.jobs.coco import export_coco
    from maskloop.server.jobs.proposals import run_stage, store_generated

    ctx = StoreContext(args, load_model=False)
    done = AutoDone(Path(ctx.store.config["WORKDIR"]) / "auto-done.json")
    ctx.load_model(args)
    model_id, version = ctx.model.model_id, ctx.model.active_version()
    if args.restart:
        print(
            f"--restart: deleted {restart_auto(ctx.store.conn, done)} automatic masks of earlier runs", file=sys.stderr
        )
    others = other_version_masks(ctx.store.conn, model_id, version)
    if others:
        made_by = ", ".join(f"{n} by {name}" for name, n in others.items())
        raise UserError(
            f"the store holds automatic masks of another model version ({made_by}; active: {model_id}@{version}): "
            f"activate that version to resume its run, or pass --restart to delete them and annotate anew"
        )
    todo = [r for r in ctx.usable_images() if AutoDone.key(model_id, version, r["sha256"]) not in done.keys]
    settings = ctx.settings(args)
    category = ctx.category(args.category)
    ctx.report_unusable()
    print(f"{len(todo)} images to annotate ({len(done.keys)} done before)", file=sys.stderr)
    if args.ray and todo:
        for result in _progress("auto")(ctx.on_ray(todo, args.ray, settings), total=len(todo)):
            if result.error:
                print(f"skipped {result.file_name}: {result.error}", file=sys.stderr)
                continue
            store_generated(
                ctx.store.conn, result.image_id, result.masks, category, "auto", "accepted", model_id, version
            )
            done.add(AutoDone.key(model_id, version, result.sha256))
    else:
        stage = ctx.stage(settings, "auto", "accepted", version)
        for row in _progress("auto")(todo):
            run_stage(stage, ctx.store.conn, [row], ctx.store.data_dir, ctx.embedding_of, category)
            done.add(AutoDone.key(model_id, version, row["sha256"]))
    coco = export_coco(ctx.store.conn, statuses=("accepted",), stages=("auto",))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(coco))
    print(
        f"wrote {len(coco['annotations'])} automatic masks on {len({a['image_id'] for a in coco['annotations']})} images to {args.out}"
    )
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Fill the server's embedding cache for every usable image (those cached already are skipped)."""
    ctx = StoreContext(args, load_model=False)
    ctx.load_model(args)
    cache = ctx.embeddings.cache
    todo = [r for r in ctx.usable_images() if not cache.has(r["sha256"])]
    ctx.report_unusable()
    print(f"{len(todo)} images to embed", file=sys.stderr)
    failed = 0
    if args.ray and todo:
        for result in _progress("embed")(ctx.on_ray(todo, args.ray, None), total=len(todo)):
            if result.error:
                failed += 1
                print(f"skipped {result.file_name}: {result.error}", file=sys.stderr)
                continue
            from maskloop.server.jobs.proposals import embedding_from_npy

            cache.write(result.sha256, embedding_from_npy(result.embedding_npy))
    else:
        for row in _progress("embed")(todo):
            try:
                ctx.embedding_of(row, ctx.store.data_dir / row["file_name"])
            except UserError as exc:
                failed += 1
                print(f"skipped {row['file_name']}: {exc}", file=sys.stderr)
    print(f"embedded {len(todo) - failed} images into {cache.dir}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from maskloop.cli.learn import format_versions
    from maskloop.engine.stats import format_table, stage_statistics, version_statistics

    ctx = StoreContext(args, load_model=False)
    stats = stage_statistics(ctx.store.conn)
    versions = version_statistics(ctx.store.conn, ctx.versions)
    if args.json:
        print(json.dumps({**stats, "versions": versions}, indent=2))
    else:
        print(format_table(stats))
        print("\nmodel versions (held-out metrics of their training run; masks made with each):")
        print(format_versions(versions))
    return 0
