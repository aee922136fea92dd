"""Property-based fuzzing of every HTTP route: whatever comes in, no answer is a 5xx.

Hypothesis draws, for each rule of the app's URL map and each of its methods: path values (real
ids, huge ids, odd file names), query strings, bodies (JSON built from the fields the API knows
plus hostile values: huge and non-finite numbers, lone surrogates, NUL, deep nesting; or raw
bytes under any content type) and cross-site headers. Every answer must be < 500, and an API
error must be the one-line JSON ``{"error": ...}``.

Bounded for CI: ``MASKLOOP_FUZZ_EXAMPLES`` examples per route and method (default 30; the whole
module then runs in about half a minute on a 2-core machine, plus the session's one decoder export
if no other test made it). Routes that start expensive work with good input (``/propose`` runs the
automatic mask generator) get only ids of images that cannot be used, and the embedding route one
usable image, so the fuzz stays bounded; their good paths are tested elsewhere.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.data import make_data_dir, square_mask

from maskloop import masks
from maskloop.server.http.annotations import ANNOTATION_FIELDS

EXAMPLES = int(os.environ.get("MASKLOOP_FUZZ_EXAMPLES", "30"))
_ARGUMENT = re.compile(r"<(?:[^:>]+:)?([^>]+)>")
#: Endpoints whose good input costs tens of seconds of CPU: fuzzed with unusable ids only.
COSTLY = {"engine.propose"}
#: Endpoints whose good input costs seconds once per image (an embedding): one usable image only.
ONE_GOOD_IMAGE = {"images.embedding"}

#: Every body field some endpoint knows: an annotation's (from the API itself), a category's, a
#: proposal request's, and read-only ones a client may wrongly send.
FIELDS = tuple(
    sorted(ANNOTATION_FIELDS | {"name", "color", "supercategory", "points_per_side", "category", "id", "area"})
)
HOSTILE_STRINGS = (
    "\ud800",
    "a\x00b",
    " padded ",
    "#ff0000",
    "#FFF",
    "accepted",
    "proposed",
    "rejected",
    "manual",
    "semi",
    "done",
    "in_progress",
    "x" * 300,
    "",
    "polygon",
    "../../etc/passwd",
)
HOSTILE_NUMBERS = (0, 1, -1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30, -(10**30), 10**400, 1e308, -1e308, 0.5, 1e-320)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(HOSTILE_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(HOSTILE_STRINGS),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)


def rle_for(height: int, width: int) -> dict:
    return masks.encode(square_mask(height, width, 1, 1, min(width, 5), min(height, 5)))


segmentations = st.one_of(
    st.sampled_from(
        [
            rle_for(48, 64),
            rle_for(40, 30),
            rle_for(64, 48),
            {"size": [48, 64], "counts": "0"},
            {"size": [48, 64], "counts": [0, 3072]},
            {"size": [10**30, 64], "counts": "PP"},
            {"size": [48, 64], "counts": [10**30, -(10**30) + 3072]},
            [[0, 0, 1e9, 0, 1e9, 1e9]],
        ]
    ),
    json_values,
)
bodies = st.one_of(
    st.fixed_dictionaries({}, optional={**{k: json_values for k in FIELDS}, "segmentation": segmentations}),
    st.fixed_dictionaries(
        {"category_id": st.sampled_from([1, 2, 10**30]), "segmentation": segmentations},
        optional={k: json_values for k in ("clicks", "seconds", "prompts", "stage", "status")},
    ),
    json_values,
)
DEEP = "[" * 5000 + "]" * 5000
raw_bodies = st.one_of(
    bodies.map(lambda b: (json.dumps(b).encode(), "application/json")),
    st.tuples(
        st.binary(max_size=48),
        st.sampled_from(
            [
                "application/json",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "",
            ]
        ),
    ),
    st.sampled_from(
        [
            (DEEP.encode(), "application/json"),
            (b'{"name": "' + b"9" * 5000 + b'"}', "application/json"),
            (b'{"n": ' + b"9" * 5000 + b"}", "application/json"),
            (b"\xff\xfe{}", "application/json"),
        ]
    ),
    st.none(),
)
query_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
queries = st.dictionaries(
    st.sampled_from(["format", "tolerance", "status", "dtype", "download", "token", "x"]),
    st.one_of(
        query_text,
        st.sampled_from(
            [
                "polygon",
                "rle",
                "1e30",
                "nan",
                "inf",
                "-1",
                "1e400",
                "float32",
                "all",
                "accepted,proposed",
                "accepted,,",
                "2",
            ]
        ),
    ),
    max_size=3,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Origin": st.sampled_from(["http://localhost", "http://evil.example", "null", "http://localhost:1"]),
        "Sec-Fetch-Site": st.sampled_from(["same-origin", "none", "cross-site", "same-site"]),
    },
)
file_names = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=24),
    st.sampled_from(
        [
            "index.html",
            "js/api.js",
            "../README.md",
            "./node_modules/x",
            "manifest.json",
            "decoder.onnx",
            "ort.wasm.min.mjs",
            "%2e%2e/secret",
        ]
    ),
)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, onnx_dir):
    """One app for the whole fuzz run (state accumulates, as on a real server): real images and
    broken files, two categories and a few annotations to hit."""
    from maskloop.server.http.app import create_app

    root = tmp_path_factory.mktemp("fuzz")
    data = make_data_dir(root / "data")
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(data),
            "WORKDIR": str(root / "work"),
            "ONNX_DIR": str(onnx_dir),
            "PRECOMPUTE": False,
            "DEVICE": "cpu",
            "TORCH_THREADS": 2,
            "TRAIN_STEPS": 1,
        }
    )  # POST /api/train with good input: a 1-step run
    client = app.test_client()
    images = client.get("/api/images").get_json()
    for name in ("cat", "dog"):
        assert client.post("/api/categories", json={"name": name}).status_code == 201
    good = [im for im in images if not im.get("error")]
    for im in good[:2]:
        body = {"category_id": 1, "segmentation": rle_for(im["height"], im["width"])}
        assert client.post(f"/api/images/{im['id']}/annotations", json=body).status_code == 201
    app.fuzz_ids = {
        "image_id": [im["id"] for im in images],
        "unusable_image_id": [im["id"] for im in images if im.get("error")],
        "usable_image_id": [im["id"] for im in good],
        "category_id": [1, 2],
        "annotation_id": [1, 2],
    }
    yield app
    app.extensions["maskloop.training"].wait(600)
    app.extensions["maskloop"].embeddings.stop()


def _rules() -> list:
    """(rule, endpoint, method) of every route of a throwaway app (the fuzz runs on ``fuzz_app``)."""
    import tempfile
    from pathlib import Path

    from maskloop.server.http.app import create_app

    with tempfile.TemporaryDirectory(prefix="maskloop-fuzz-rules-") as tmp:
        root = Path(tmp)
        app = create_app(
            {
                "TESTING": True,
                "DATA_DIR": str(make_data_dir(root / "data", bad=False)),
                "WORKDIR": str(root / "work"),
                "PRECOMPUTE": False,
                "SCAN_AT_START": False,
            }
        )
        rules = list(app.url_map.iter_rules())
    return [
        pytest.param(rule.rule, rule.endpoint, method, id=f"{method} {rule.rule}")
        for rule in rules
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]


def _path_values(rule: str, endpoint: str, ids: dict) -> st.SearchStrategy:
    """A strategy of dicts: the rule's arguments -> URL-ready strings."""
    names = _ARGUMENT.findall(rule)
    strategies = {}
    for name in names:
        if name == "filename":
            strategies[name] = file_names.map(lambda s: quote(s, safe="/"))
            continue
        known = ids.get(name, [])
        if endpoint in COSTLY:
            known = ids["unusable_image_id"]
        elif endpoint in ONE_GOOD_IMAGE:
            known = ids["unusable_image_id"] + ids["usable_image_id"][:1]
        ints = st.integers(min_value=0, max_value=2**70) | st.sampled_from([2**63 - 1, 2**63, 2**64, 10**30])
        if endpoint in COSTLY | ONE_GOOD_IMAGE:
            ints = ints.filter(lambda v: v not in ids["image_id"] or v in known)
        strategies[name] = (st.sampled_from(known) | ints if known else ints).map(str)
    return st.fixed_dictionaries(strategies)


def _fill(rule: str, values: dict) -> str:
    return _ARGUMENT.sub(lambda m: values[m.group(1)], rule)


@pytest.mark.parametrize("rule, endpoint, method", _rules())
def test_no_route_answers_5xx(fuzz_app, rule, endpoint, method):
    client = fuzz_app.test_client()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(path_values=_path_values(rule, endpoint, fuzz_app.fuzz_ids), query=queries, body=raw_bodies, extra=headers)
    def check(path_values, query, body, extra):
        url = _fill(rule, path_values) + ("?" + urlencode(query) if query else "")
        kwargs = {"headers": extra}
        if body is not None and method != "GET":
            kwargs["data"], content_type = body
            if content_type:
                kwargs["content_type"] = content_type
        r = client.open(url, method=method, **kwargs)
        assert r.status_code < 500, (method, url, body, r.status_code, r.get_data(as_text=True)[:300])
        if r.status_code >= 400 and (url.startswith("/api/") or url.startswith("/models/")):
            error = r.get_json(silent=True)
            assert isinstance(error, dict) and isinstance(error.get("error"), str), (method, url, r.data[:200])
            assert "\n" not in error["error"], (method, url, error)

    check()
