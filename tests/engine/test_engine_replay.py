"""``maskloop replay``: a simulated annotator runs the data engine round by round.

Real throughout: the texture domain's images and exact masks, the default model, a fresh SQLite
store, ``maskloop train``'s run after each round. Two rounds of two images, two training steps
and a 5-click held-out protocol each, run twice (the same seed; the second run stops after one round): the loop's mechanics, not its
gain (that is bench/bench_replay.py's).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import cli

from maskloop.cli.replay import format_rounds
from maskloop.engine import replay
from maskloop.engine.texture_domain import write_texture_domain
from maskloop.errors import UserError

pytest.importorskip("skimage")

#: What may differ between two runs of the same replay: times, and where the project was kept.
TIMING = {"train_seconds", "learn_seconds", "label_seconds"}


def maskloop(*args: str) -> subprocess.CompletedProcess:
    return cli.run(*args, env={"MASKLOOP_TORCH_THREADS": "2"})


@pytest.fixture(scope="module")
def domain(tmp_path_factory) -> Path:
    """Five texture images (3 to 5 objects each) and their COCO file."""
    return write_texture_domain(tmp_path_factory.mktemp("replay") / "set", 5, seed=3)


def replay_args(coco: Path, *more: str) -> list[str]:
    return ["replay", "--coco", str(coco), "--images", str(coco.parent), *more]


@pytest.fixture(scope="module")
def two_runs(domain, tmp_path_factory) -> tuple[dict, dict, Path, Path]:
    """The same replay twice (the second stops after its first round, which is all it needs to
    compare): once kept in a folder with a plot, once in a temporary folder."""
    out = tmp_path_factory.mktemp("replay-out")
    args = replay_args(domain, "--per-round", "2", "--steps-per-round", "2", "--eval-clicks", "5", "--seed", "4")
    kept = maskloop(
        *args, "--rounds", "2", "--json", "--workdir", str(out / "project"), "--plot", str(out / "curve.png")
    )
    assert kept.returncode == 0, kept.stderr
    assert "round 1/2: labelling 2 images with base" in kept.stderr
    temp = out / "tmp"
    temp.mkdir()
    with pytest.MonkeyPatch.context() as mp:  # maskloop() runs the command in this process
        mp.setattr(tempfile, "tempdir", str(temp))
        again = maskloop(*args, "--rounds", "1", "--json")
    assert again.returncode == 0, again.stderr
    assert "round 1/1: labelling 2 images with base" in again.stderr
    assert not any(temp.iterdir()), "the temporary project must be removed"
    return json.loads(kept.stdout), json.loads(again.stdout), out / "project" / "images", out / "curve.png"


@pytest.mark.slow
def test_replay_reports_every_round(two_runs, domain):
    report, _, project, _ = two_runs
    coco = json.loads(domain.read_text())
    masks_of = {img["id"]: sum(a["image_id"] == img["id"] for a in coco["annotations"]) for img in coco["images"]}
    rounds = report["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    seen = [i for r in rounds for i in r["image_ids"]]
    assert len(seen) == len(set(seen)) == 4, "each round labels new images"
    for r in rounds:
        assert r["images"] == 2 and r["masks"] == sum(masks_of[i] for i in r["image_ids"])
        assert 1 <= r["clicks_per_mask"] <= replay.MAX_CLICKS and 0 <= r["miou@1"] <= 1
        assert 0 <= r["reached_target"] <= 1
        assert r["by_hand"] == round(r["masks"] * (1 - r["reached_target"]))
        assert r["train_steps"] == 2 and r["train_seconds"] > 0
        assert r["blend"] in (None, 0.75, 0.5, 0.25) and r["chosen_step"] is not None
        assert r["reason"].startswith(("activated", "not activated", "refused"))
    assert rounds[0]["active_version"] == "base" and rounds[0]["base_clicks_per_mask"] == rounds[0]["clicks_per_mask"]
    assert [r["trained_version"] for r in rounds] == ["v0001", "v0002"]
    assert rounds[1]["active_version"] == ("v0001" if rounds[0]["activated"] else "base")
    expected = round(rounds[1]["clicks_per_mask"] / rounds[0]["clicks_per_mask"], 4)
    assert report["clicks_ratio_last_first"] == expected
    same_objects = round(rounds[1]["clicks_per_mask"] / rounds[1]["base_clicks_per_mask"], 4)
    assert report["clicks_ratio_last_base"] == same_objects
    assert report["project"] == str(project)

    # the masks are in the kept project's store as a person's accepted masks, with their clicks
    with sqlite3.connect(project / ".maskloop" / "maskloop.db") as db:
        stored = db.execute("SELECT stage, status, clicks, model_version FROM annotation ORDER BY id").fetchall()
    assert len(stored) == sum(r["masks"] for r in rounds)
    assert {(s[0], s[1]) for s in stored} == {("manual", "accepted")}
    assert all(1 <= s[2] <= replay.MAX_CLICKS for s in stored)
    first = rounds[0]["masks"]
    assert {s[3] for s in stored[:first]} == {"base"}
    assert {s[3] for s in stored[first:]} == {rounds[1]["active_version"]}
    listed = json.loads(maskloop("models", "--data", str(project), "--json").stdout)
    assert [r["version"] for r in listed] == ["base", "v0001", "v0002"]


@pytest.mark.slow
def test_replay_is_deterministic_for_a_seed(two_runs):
    a, b, _, _ = two_runs
    strip = lambda report: [{k: v for k, v in r.items() if k not in TIMING} for r in report["rounds"]]  # noqa: E731
    assert strip(a)[:1] == strip(b) and len(strip(a)) == 2
    assert b["project"] is None and {**a["settings"], "rounds": 1} == b["settings"]


@pytest.mark.slow
def test_replay_writes_the_plot(two_runs):
    *_, plot = two_runs
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.width >= 600 and image.height >= 400
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 10, "the chart has content"


@pytest.mark.slow
def test_replay_text_report(two_runs):
    report, *_ = two_runs
    lines = format_rounds(report).splitlines()
    assert lines[0].split()[:4] == ["round", "images", "masks", "clicks/mask"]
    assert lines[2].split()[0] == "1" and "base" in lines[2] and "v0001" in lines[2]
    assert f"last round / first: {report['clicks_ratio_last_first']:.3f}" in lines[4]
    assert f"last round / the base model on its objects: {report['clicks_ratio_last_base']:.3f}" in lines[5]
    assert lines[6].startswith("round 1 gate: ") and "maskloop models --data" in lines[-1]
    assert "last round / first: -" in format_rounds({**report, "clicks_ratio_last_first": None})


def test_round_order_is_seeded_and_disjoint():
    ids = list(range(1, 21))
    a = replay.round_order(ids, 3, 4, seed=1)
    assert a == replay.round_order(list(reversed(ids)), 3, 4, seed=1)
    assert a != replay.round_order(ids, 3, 4, seed=2)
    flat = [i for r in a for i in r]
    assert [len(r) for r in a] == [4, 4, 4] and len(set(flat)) == 12 and set(flat) <= set(ids)


def test_round_numbers_and_ratio():
    gt = np.zeros((4, 4), bool)
    masks = [
        replay.SimulatedMask(1, [0.5, 0.95], gt, by_hand=False),
        replay.SimulatedMask(2, [0.2] * 10, gt, by_hand=True),
    ]
    numbers = replay.round_numbers(masks)
    assert numbers == {"masks": 2, "clicks_per_mask": 6.0, "miou@1": 0.35, "reached_target": 0.5, "by_hand": 1}
    assert replay.clicks_ratio([{"clicks_per_mask": 6.0}, {"clicks_per_mask": 3.0}]) == 0.5
    assert replay.clicks_ratio([{"clicks_per_mask": 6.0}]) is None
    last = {"clicks_per_mask": 3.0, "base_clicks_per_mask": 4.0}
    assert replay.clicks_ratio_same_objects([{"clicks_per_mask": 6.0}, last]) == 0.75
    assert replay.clicks_ratio_same_objects([{**last, "base_clicks_per_mask": None}]) is None
    assert replay.clicks_ratio_same_objects([]) is None


def test_annotate_object_stops_at_the_target_and_fixes_by_hand():
    from maskloop.exporter.decoder_runtime import Prediction

    gt = np.zeros((32, 32), bool)
    gt[8:24, 8:24] = True

    class Fixed:
        """A decoder that always answers ``mask`` (4 candidates, lowres logits of zeros)."""

        def __init__(self, mask: np.ndarray) -> None:
            self.mask = mask

        def decode(self, embedding, prompt):
            return Prediction(
                masks=np.stack([self.mask] * 4), iou=np.ones(4, np.float32), low_res_logits=np.zeros((4, 256, 256))
            )

    good = replay.annotate_object(Fixed(gt), np.zeros((1, 256, 64, 64)), gt, annotation_id=7)
    assert good.clicks == 1 and not good.by_hand and good.ious == [1.0] and np.array_equal(good.mask, gt)
    half = gt.copy()
    half[8:16] = False
    bad = replay.annotate_object(Fixed(half), np.zeros((1, 256, 64, 64)), gt, annotation_id=8)
    assert bad.clicks == replay.MAX_CLICKS and bad.by_hand and np.array_equal(bad.mask, gt)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rounds", "0", "--per-round", "2"], "--rounds must be from 1 to 50"),
        (["--rounds", "51", "--per-round", "2"], "--rounds must be from 1 to 50"),
        (["--rounds", "1", "--per-round", "1"], "--per-round must be from 2"),
        (["--rounds", "3", "--per-round", "2"], "3 rounds of 2 images need 6 images"),
        (["--rounds", "1", "--per-round", "2", "--steps-per-round", "0"], "--steps-per-round must be from 1"),
        (["--rounds", "1", "--per-round", "2", "--minutes-per-round", "-1"], "--minutes-per-round must be above 0"),
        (["--rounds", "1", "--per-round", "2", "--eval-clicks", "3"], "--eval-clicks must be at least 5"),
        (["--rounds", "1", "--per-round", "2", "--plot", "curve.svg"], "--plot writes a PNG"),
        (["--rounds", "1", "--per-round", "2", "--plot", "/no/such/folder/c.png"], "--plot: folder not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(domain, flags, message):
    done = maskloop(*replay_args(domain, *flags))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_bad_files_are_one_line_and_exit_2(domain, tmp_path):
    def fails(*args: str) -> str:
        done = maskloop("replay", *args, "--rounds", "1", "--per-round", "2")
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        return done.stderr

    assert "COCO file not found" in fails("--coco", str(tmp_path / "none.json"), "--images", str(domain.parent))
    assert "images folder not found" in fails("--coco", str(domain), "--images", str(tmp_path / "none"))
    (tmp_path / "bad.json").write_text("{")
    assert "is not JSON" in fails("--coco", str(tmp_path / "bad.json"), "--images", str(domain.parent))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    assert "--workdir must be a new or empty folder" in fails(
        "--coco", str(domain), "--images", str(domain.parent), "--workdir", str(tmp_path / "full")
    )
    partial = tmp_path / "partial"
    partial.mkdir()
    coco = json.loads(domain.read_text())
    for img in coco["images"][1:]:
        (partial / img["file_name"]).write_bytes((domain.parent / img["file_name"]).read_bytes())
    (partial / "annotations.json").write_text(json.dumps(coco))
    # ids 1..5 in a seeded order: with --per-round 5 the missing first image is always chosen
    done = maskloop(*replay_args(partial / "annotations.json", "--rounds", "1", "--per-round", "5"))
    assert done.returncode == 2 and "texture_000.png" in done.stderr and "not found" in done.stderr


def test_check_sizes_raises_user_errors():
    with pytest.raises(UserError):
        replay.check_sizes(1, replay.MAX_PER_ROUND + 1)
    replay.check_sizes(replay.MAX_ROUNDS, replay.MIN_PER_ROUND)
