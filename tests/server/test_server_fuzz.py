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


#: One value of every JSON type, and the hostile ones of each: what ``test_every_json_type_in_every_field``
#: puts in each field. The long string must never come back in an answer.
LONG = "y" * 100_000
EVERY_TYPE = (
    [],
    [1, "a"],
    {},
    {"a": 1},
    10**400,
    -(10**400),
    2**63,
    1.5,
    1e308,
    -1,
    0,
    None,
    True,
    False,
    "",
    LONG,
)
#: endpoint -> a body that is good (or nearly): each of its leaves is replaced in turn.
GOOD_BODIES: dict[str, dict] = {
    "annotations.create_annotation": {
        "category_id": 1,
        "segmentation": {"size": [48, 64], "counts": "0"},
        "stage": "manual",
        "status": "accepted",
        "clicks": 1,
        "seconds": 1.0,
        "prompts": {"points": [[1, 1, 1]]},
        "model": "vit_t",
        "model_version": "base",
        "predicted_iou": 0.5,
        "stability_score": 0.5,
    },
    "annotations.create_category": {"name": "zebra", "color": "#112233", "supercategory": "animal"},
    "decode.decode": {"points": [[1, 1, 1]], "box": [0, 0, 2, 2], "mask_input": None, "model_version": "base"},
    "review.decide": {"decision": "reject", "reason": "why"},
    "learning.start_training": {"steps": 1, "seed": 1, "holdout": 0.2, "eval_clicks": 5, "force": False},
    "learning.set_training_cadence": {"retrain_every": 5},
    "learning.switch_version": {"version": "base"},
    "cleanup.set_cleanup": {"min_hole_px": 100, "min_island_px": 100, "on_accept": False},
    "polygons.put_polygons": {"rings": [{"points": [1, 1, 5, 1, 5, 5], "hole": False}]},
    "images.patch_image": {"status": "in_progress"},
    "engine.propose": {"points_per_side": 4, "category": "x"},
    "auth.login": {"name": "bob", "password": "pw"},
}
GOOD_BODIES["annotations.patch_annotation"] = GOOD_BODIES["annotations.create_annotation"]
GOOD_BODIES["annotations.patch_category"] = GOOD_BODIES["annotations.create_category"]
GOOD_BODIES["review.decide_mask"] = GOOD_BODIES["review.decide"]


def _leaves(value, path=()):
    """Paths to every leaf (and every list/object) of a JSON value."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaves(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _leaves(child, (*path, i))


def _replaced(body, path, value):
    """A deep copy of ``body`` with the item at ``path`` replaced by ``value``."""
    copy = json.loads(json.dumps(body))
    item = copy
    for key in path[:-1]:
        item = item[key]
    item[path[-1]] = value
    return copy


def test_every_json_type_in_every_field(fuzz_app):
    """Every JSON type (lists, objects, huge integers, floats, negatives, null, booleans, a 100 000
    character string) in every field, nested ones included, of every route that takes a body: no 5xx,
    and no answer quotes more than a short piece of the value."""
    client = fuzz_app.test_client()
    images = client.get("/api/images").get_json()
    good = next(im for im in images if not im.get("error"))
    unusable = next(im for im in images if im.get("error"))
    category = client.post("/api/categories", json={"name": "fuzz-every-type"}).get_json()["id"]
    mask = {"category_id": category, "segmentation": rle_for(good["height"], good["width"])}
    annotation = client.post(f"/api/images/{good['id']}/annotations", json=mask).get_json()["id"]
    ids = {"image_id": good["id"], "category_id": category, "annotation_id": annotation}
    sent = 0
    for rule, endpoint, method in (p.values for p in _rules()):
        if method not in ("POST", "PUT", "PATCH") or "<filename>" in rule:
            continue
        route_ids = {**ids, "image_id": unusable["id"]} if endpoint in COSTLY else ids
        url = _fill(rule, {k: str(v) for k, v in route_ids.items()})
        base = GOOD_BODIES.get(endpoint, {"x": 1})
        if endpoint == "annotations.create_annotation" or endpoint == "annotations.patch_annotation":
            base = {**base, "category_id": category, "segmentation": rle_for(good["height"], good["width"])}
        cases = [(("<body>",), value) for value in EVERY_TYPE]
        cases += [(path, value) for path in _leaves(base) for value in EVERY_TYPE]
        for path, value in cases:
            body = value if path == ("<body>",) else _replaced(base, path, value)
            r = client.open(url, method=method, data=json.dumps(body), content_type="application/json")
            sent += 1
            where = (method, url, path, validate_brief(value))
            assert r.status_code < 500, (*where, r.status_code, r.get_data(as_text=True)[:300])
            assert len(r.data) < 4000 or r.status_code < 400, (*where, len(r.data))
            assert "y" * 120 not in r.get_data(as_text=True), (*where, "the long value is echoed")
    assert sent > 500


def validate_brief(value) -> str:
    from maskloop.validate import brief

    return brief(value)


def test_the_reported_500s_are_400s(fuzz_app):
    """Issue 25's cases: a review decision that is a list (unhashable) or missing, a 400-digit
    training number (an OverflowError in a float conversion), a 400-digit polygon coordinate."""
    client = fuzz_app.test_client()
    for body in ({"decision": []}, {"decision": {}}, {}):
        for url in ("/api/images/1/review", "/api/annotations/1/review"):
            r = client.post(url, json=body)
            assert r.status_code in (400, 404), (url, body, r.status_code, r.get_json())
    for key in ("steps", "seed", "eval_clicks", "holdout", "minutes"):
        r = client.post("/api/train", data=json.dumps({key: 10**400}), content_type="application/json")
        assert r.status_code == 400 and "digits" in r.get_json()["error"], (key, r.get_json())
    rings = {"rings": [{"points": [10**400, 1, 5, 1, 5, 5], "hole": False}]}
    r = client.put("/api/annotations/1/polygons", data=json.dumps(rings), content_type="application/json")
    assert r.status_code in (400, 404), r.get_json()


def test_every_json_type_in_a_login(tmp_path, onnx_dir, monkeypatch):
    """The login route with accounts on (the sweep above runs in single-user mode, where it is a 400)."""
    from maskloop.server.http.app import create_app
    from maskloop.server.store import accounts
    from maskloop.server.store.db import open_database

    config = {
        "TESTING": True,
        "DATA_DIR": str(make_data_dir(tmp_path / "data", bad=False)),
        "WORKDIR": str(tmp_path / "work"),
    }
    app = create_app({**config, "ONNX_DIR": str(onnx_dir), "PRECOMPUTE": False, "ACCOUNTS": True})
    conn = open_database(app.config["DATABASE"])
    accounts.add_account(conn, "bob", "annotator")
    conn.close()
    client = app.test_client()
    monkeypatch.setattr(accounts, "FIRST_NAME_DELAY", 0.0)  # bob's failures would slow each try down
    base = GOOD_BODIES["auth.login"]
    for i, (path, value) in enumerate((p, v) for p in _leaves(base) for v in EVERY_TYPE):
        address = f"10.0.{i // 200}.{i % 200}"  # one address each: the login limit is not under test
        body = json.dumps(_replaced(base, path, value))
        r = client.post("/api/login", data=body, content_type="application/json", environ_base={"REMOTE_ADDR": address})
        assert r.status_code in (400, 401), (path, validate_brief(value), r.status_code, r.get_json())
        assert "y" * 120 not in r.get_data(as_text=True)
