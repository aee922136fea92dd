"""A live ``maskloop serve`` (``tests/support/live_server.py``), Debian's Chromium under Playwright, a driver for the annotation
page and the synthetic test images: shared by the browser tests (``conftest.py``) and the page
benchmark (``bench/bench_web.py``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # live_server, shared with tests/server and bench/
from support.live_server import LiveServer  # noqa: E402

#: Debian's Chromium (Playwright cannot download browsers here); MASKLOOP_CHROMIUM overrides.
CHROMIUM = os.environ.get("MASKLOOP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
]
VIEWPORT = {"width": 1280, "height": 800}


def start_server(
    data: Path, workdir: Path, cache: Path, token: str | None = None, env: dict[str, str] | None = None
) -> LiveServer:
    """``maskloop serve`` on ``data`` with the embeddings precomputed; ``cache``, ``token`` and ``env`` as in LiveServer."""
    import fcntl

    # One process at a time exports the decoder into the shared cache (the server does it at start).
    with open(cache / ".export.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = LiveServer(data, workdir, cache=cache, token=token, env=env)
    try:
        server.wait_for_embeddings()
    except BaseException:
        server.stop()
        raise
    return server


#: (width, height) of ``large_scene_server``'s picture.
LARGE_SCENE = (9000, 6000)


@contextlib.contextmanager
def large_scene_server(tmp_path_factory, cache: Path, seed: int, quality: int) -> Iterator[tuple[LiveServer, list]]:
    """``maskloop serve`` on one ``LARGE_SCENE`` (9000x6000) JPEG ``field.jpg`` of ``engine.small_objects.make_scene``
    (one 80-px object, exact truth): (server, the scene's objects); the server stops on exit."""
    from maskloop.engine.small_objects import make_scene

    image, objects = make_scene(seed=seed, width=LARGE_SCENE[0], height=LARGE_SCENE[1], sizes=(80,), per_size=1)
    data = tmp_path_factory.mktemp(f"large-data-{seed}")
    Image.fromarray(image).save(data / "field.jpg", quality=quality)
    server = start_server(data, tmp_path_factory.mktemp(f"large-work-{seed}"), cache)
    try:
        yield server, objects
    finally:
        server.stop()


def texture_project(tmp_path_factory, name: str, images: int, seed: int) -> tuple[Path, Path]:
    """A folder of texture images (``engine/texture_domain``) whose exact masks are imported as
    accepted annotations, and its work folder: (data, workdir)."""
    from support import cli

    from maskloop.engine.texture_domain import write_texture_domain

    data = tmp_path_factory.mktemp(name) / "images"
    coco = write_texture_domain(data, images, seed=seed)
    work = tmp_path_factory.mktemp(f"{name}-work")
    done = cli.run("import-coco", str(coco), "--data", str(data), "--workdir", str(work))
    assert done.returncode == 0, done.stderr
    return data, work


def post_json(server: LiveServer, path: str, body: dict) -> dict:
    """POST ``body`` as JSON to the live server; the decoded JSON answer."""
    import json
    import urllib.request

    request = urllib.request.Request(
        server.url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.loads(r.read())


def launch_chromium(playwright):
    """Debian's Chromium, headless, as the tests and the benchmark run it."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def copy_images(dest: Path, names: dict[str, str]) -> Path:
    """Copy sample images into ``dest`` as {new name: sample file name}."""
    dest.mkdir(parents=True, exist_ok=True)
    for new, sample in names.items():
        shutil.copy(REPO / "sample_images" / sample, dest / new)
    return dest


class Annotator:
    """Drives the annotation page like a person: open an image, click, drag, press keys.

    Coordinates are image pixels (upright frame); they are turned into screen positions with
    the page's own view transform, which the zoom test checks independently.
    """

    def __init__(self, page, server: LiveServer) -> None:
        self.page = page
        self.server = server
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def goto(self, file_name: str | None = None) -> None:
        target = self.server.url + "/"
        if file_name is not None:
            target += f"#image={self.server.image_id(file_name)}"
        self.page.goto(target)
        self.wait_ready()

    def wait_ready(self, timeout: float = 120_000) -> None:
        self.page.wait_for_function("() => window.maskloop && window.maskloop.ready", timeout=timeout)

    def idle(self) -> None:
        self.page.evaluate("maskloop.idle()")

    def state(self, expression: str):
        """Evaluate a JS expression in which ``s`` is the page's test hook ``window.maskloop`` (web/js/hook.js)."""
        return self.page.evaluate(f"(() => {{ const s = maskloop; return {expression}; }})()")

    def client_xy(self, x: float, y: float) -> tuple[float, float]:
        return tuple(self.page.evaluate(f"maskloop.imageToClient({x}, {y})"))

    def _prompted(self, action) -> None:
        n = self.state("s.latencyCount")
        action()
        self.page.wait_for_function(f"() => maskloop.latencyCount > {n}", timeout=60_000)
        self.idle()

    def click(self, x: float, y: float, button: str = "left", modifiers: list[str] | None = None) -> None:
        """Click at image pixel (x, y) and wait until the decoder's mask is drawn."""
        cx, cy = self.client_xy(x, y)

        def press():
            for key in modifiers or []:
                self.page.keyboard.down(key)
            self.page.mouse.click(cx, cy, button=button)
            for key in reversed(modifiers or []):
                self.page.keyboard.up(key)

        self._prompted(press)

    def drag_box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        ax, ay = self.client_xy(x0, y0)
        bx, by = self.client_xy(x1, y1)

        def drag():
            self.page.mouse.move(ax, ay)
            self.page.mouse.down()
            self.page.mouse.move((ax + bx) / 2, (ay + by) / 2, steps=3)
            self.page.mouse.move(bx, by, steps=3)
            self.page.mouse.up()

        self._prompted(drag)

    def key(self, key: str, wait_mask: bool = False) -> None:
        if wait_mask:
            self._prompted(lambda: self.page.keyboard.press(key))
        else:
            self.page.keyboard.press(key)
            self.idle()

    def create_category(self, name: str, color: str | None = None) -> None:
        self.page.fill("#category-name", name)
        if color:
            self.page.eval_on_selector("#category-color", f"(el) => {{ el.value = '{color}'; }}")
        self.page.click("#category-form button[type=submit]")
        self.page.wait_for_selector(f"#category-list li.current:has-text('{name}')")
        self.idle()

    def accept(self) -> dict:
        """Press Enter and return the annotation the server stored."""
        n = self.state("s.annotations.length")
        before = {a["id"] for a in self.state("s.annotations")}
        self.page.locator("#stage").focus()
        self.page.keyboard.press("Enter")
        # On a project without categories the first Enter asks for a name ("object" pre-filled).
        asked = f"() => maskloop.annotations.length > {n} || maskloop.askingCategory"
        self.page.wait_for_function(asked, timeout=60_000)
        if self.state("s.askingCategory"):
            self.page.keyboard.press("Enter")
        self.page.wait_for_function(f"() => maskloop.annotations.length > {n}", timeout=60_000)
        self.idle()
        new = [a for a in self.state("s.annotations") if a["id"] not in before]
        assert len(new) == 1, new
        return new[0]

    def prompt(self) -> dict:
        return self.state("s.current && s.current.prompt")

    def overlay(self, layer: str = "object") -> np.ndarray:
        """Alpha channel (H, W) uint8 of a canvas layer, in device pixels."""
        import base64

        data = self.page.evaluate(
            """(id) => { const c = document.getElementById(id); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   const a = new Uint8Array(c.width * c.height); for (let i = 0; i < a.length; i++) a[i] = d[4 * i + 3];
                   let s = ''; for (let i = 0; i < a.length; i += 32768) s += String.fromCharCode.apply(null, a.subarray(i, i + 32768));
                   return [c.width, c.height, btoa(s)]; }""",
            f"layer-{layer}",
        )
        w, h, b64 = data
        return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(h, w)

    def canvas_rgb(self, layer: str = "image") -> np.ndarray:
        import base64

        w, h, b64 = self.page.evaluate(
            """(id) => { const c = document.getElementById(id); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let s = ''; for (let i = 0; i < d.length; i += 32768) s += String.fromCharCode.apply(null, d.subarray(i, i + 32768));
                   return [c.width, c.height, btoa(s)]; }""",
            f"layer-{layer}",
        )
        return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(h, w, 4)[..., :3]

    def screen_to_image_grid(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Image coordinates (x, y) of the centres of a layer's device pixels."""
        scale, tx, ty, dpr = self.page.evaluate(
            "[maskloop.view.scale, maskloop.view.tx, maskloop.view.ty, window.devicePixelRatio || 1]"
        )
        h, w = shape
        sx = (np.arange(w) + 0.5) / dpr
        sy = (np.arange(h) + 0.5) / dpr
        return (sx - tx) / scale, (sy - ty) / scale


def mask_in_screen(mask: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """An image-frame boolean mask (H, W) sampled at screen pixel centres (ys x xs image coords)."""
    h, w = mask.shape
    xi = np.floor(xs).astype(int)
    yi = np.floor(ys).astype(int)
    inside_x = (xi >= 0) & (xi < w)
    inside_y = (yi >= 0) & (yi < h)
    out = mask[np.clip(yi, 0, h - 1)][:, np.clip(xi, 0, w - 1)]
    return out & inside_y[:, None] & inside_x[None, :]


#: Copies of chelsea.jpg (451x300), one per test that clicks on the cat.
CAT_COPIES = (
    "cat_accept.jpg",
    "cat_box.jpg",
    "cat_undo.jpg",
    "cat_candidates.jpg",
    "cat_latency.jpg",
    "cat_guess.jpg",
    "cat_hover.jpg",
    "cat_prefix.jpg",
    "cat_cold.jpg",
    "cat_brush.jpg",
    "cat_brush_click.jpg",
    "cat_brush_edit.jpg",
    "cat_clean.jpg",
    "cat_polygon.jpg",
    "cat_status.jpg",
    "cat_outline.jpg",
    "cat_undo_accept.jpg",
)
#: The synthetic images' squares, in upright image pixels: [x0, y0, x1, y1).
MARKS_SQUARE = (1203, 617, 1215, 629)
ROTATED_SQUARE = (400, 300, 440, 340)


def make_marks(path: Path) -> None:
    """1600x1000 grey with a 12x12 red square (and a few other shapes) at known pixels."""
    img = np.full((1000, 1600, 3), 150, np.uint8)
    x0, y0, x1, y1 = MARKS_SQUARE
    img[y0:y1, x0:x1] = (220, 30, 30)
    img[100:300, 200:500] = (40, 90, 200)
    img[600:900, 300:420] = (30, 160, 60)
    Image.fromarray(img).save(path)


def make_rotated_marks(path: Path) -> None:
    """A JPEG stored on its side with EXIF orientation 6; upright it is 640x480 with a red
    square at ROTATED_SQUARE."""
    from PIL import ImageOps

    upright = np.full((480, 640, 3), 150, np.uint8)
    x0, y0, x1, y1 = ROTATED_SQUARE
    upright[y0:y1, x0:x1] = (220, 30, 30)
    upright[60:160, 80:200] = (40, 90, 200)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # 480 wide, 640 high
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, quality=95, exif=exif.tobytes())
    with Image.open(path) as check:
        shown = np.asarray(ImageOps.exif_transpose(check))
    assert shown.shape == upright.shape and shown[y0 + 20, x0 + 20, 0] > 180, "EXIF fixture is not what it claims"
