"""One turn of the data engine's loop: train a new model version on a project's accepted masks.

``learn`` gathers the accepted masks of the store (stages manual, semi and import: masks a
person made, checked or brought; never the unreviewed ``auto`` stage), splits the *images* into
train and held-out, evaluates the active version on the held-out masks with the click protocol of
``maskloop evaluate``, fine-tunes the base model's mask decoder (``train.train_decoder``),
evaluates the result the same way, exports its decoders (verified against PyTorch) and writes a
new version. The version becomes active only if it is better on the held-out masks (or when
forced). Used by ``maskloop train`` and the server's ``POST /api/train``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from maskloop.engine.evaluate import EvaluationResult, evaluate
from maskloop.engine.predictors import TorchDecoder
from maskloop.engine.train import ImageSample, TrainProgress, TrainSettings, prepare_sample, train_decoder
from maskloop.engine.versions import BASE, ModelVersions, decoder_only_copy, with_mask_decoder, write_json_atomic
from maskloop.errors import UserError

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: Stages whose accepted masks a person made, checked or imported (``auto`` is nobody's).
TRAINABLE_STAGES = ("manual", "semi", "import")
#: The held-out metrics are reported after these click counts.
REPORTED_CLICKS = (1, 3, 5)
#: A new version must raise mean mIoU@1/3/5 by this much to be activated ...
MIN_GAIN = 0.005
#: ... and must not need more than this many extra clicks on average to reach IoU 0.85 (NoC@85
#: moves in steps of 1 / held-out masks, so a small held-out set makes it noisy).
NOC85_SLACK = 0.5

Progress = Callable[[dict], None]


@dataclass
class LearnSettings:
    train: TrainSettings = field(default_factory=TrainSettings)
    holdout: float = 0.2  # share of annotated images held out for the gate
    eval_clicks: int = 20  # click protocol length (NoC@85/90 count up to it)
    minutes: float | None = None  # stop training after this long (the schedule is sized from the first steps)
    force: bool = False  # activate even if not better


@dataclass
class AnnotatedImage:
    """An image of the store with its trainable accepted masks."""

    image_id: int
    file_name: str
    sha256: str
    annotation_ids: list[int]
    masks: list[np.ndarray]  # HxW bool, image as shown
    unusable: str | None = None  # why the image cannot be embedded (unreadable, missing), if so


def annotated_images(rows: Iterable[Mapping[str, Any]]) -> list[AnnotatedImage]:
    """Images with at least one non-empty mask, by image id (unusable ones say why), from the store's
    trainable-mask rows (``id, image_id, rle_counts, rle_height, rle_width, file_name, sha256, error,
    missing``, ordered by image id then annotation id)."""
    from maskloop.masks import decode

    images: dict[int, AnnotatedImage] = {}
    for r in rows:
        unusable = "the file is missing" if r["missing"] else r["error"]
        image = images.setdefault(
            r["image_id"], AnnotatedImage(r["image_id"], r["file_name"], r["sha256"], [], [], unusable)
        )
        mask = decode({"size": [r["rle_height"], r["rle_width"]], "counts": r["rle_counts"]}).astype(bool)
        if mask.any():
            image.annotation_ids.append(int(r["id"]))
            image.masks.append(mask)
    return [im for im in images.values() if im.masks]


def split_images(
    images: list[AnnotatedImage], holdout: float, seed: int
) -> tuple[list[AnnotatedImage], list[AnnotatedImage]]:
    """(train, held-out) by image: a seeded hash of each image's content orders them, the first
    ``ceil(holdout * n)`` are held out (at least one when ``holdout`` > 0, never all)."""
    if holdout <= 0:
        return images, []
    if len(images) < 2:
        raise UserError(
            f"only {len(images)} annotated image(s): the held-out check needs at least 2 "
            "(annotate another image, or pass --holdout 0 --force to train without a check)"
        )
    key = lambda im: hashlib.sha256(f"{seed}:{im.sha256}".encode()).hexdigest()  # noqa: E731
    ordered = sorted(images, key=key)
    n_held = min(len(images) - 1, max(1, int(np.ceil(holdout * len(images)))))
    held = sorted(ordered[:n_held], key=lambda im: im.image_id)
    train = sorted(ordered[n_held:], key=lambda im: im.image_id)
    return train, held


def metrics(result: EvaluationResult) -> dict:
    """The gate's numbers: mIoU after 1/3/5 clicks, NoC@85/90, box mIoU, object count."""
    s = result.summary()
    curve = s["miou_at_clicks"]
    out: dict[str, Any] = {f"miou@{k}": curve[k - 1] for k in REPORTED_CLICKS if k <= len(curve)}
    out.update({"noc85": s["noc85"], "noc90": s["noc90"], "box_miou": s["box_miou"], "objects": s["objects"]})
    return out


def gate_score(m: dict) -> float:
    """Mean held-out mIoU over the reported click counts."""
    return float(np.mean([m[f"miou@{k}"] for k in REPORTED_CLICKS if f"miou@{k}" in m]))


def decide(before: dict, after: dict, force: bool) -> tuple[bool, str]:
    """Whether to activate the new version, and why, in one line."""
    gain = gate_score(after) - gate_score(before)
    noc_up = after["noc85"] > before["noc85"] + NOC85_SLACK
    why = (
        f"held-out mean mIoU@1/3/5 {gate_score(before):.4f} -> {gate_score(after):.4f} ({gain:+.4f}), "
        f"NoC@85 {before['noc85']} -> {after['noc85']}"
    )
    if gain >= MIN_GAIN and not noc_up:
        return True, f"activated: better on the held-out masks ({why})"
    reason = f"gain below {MIN_GAIN}" if gain < MIN_GAIN else f"NoC@85 went up by more than {NOC85_SLACK}"
    if force:
        return True, f"activated because --force was given, although not better ({reason}; {why})"
    return False, f"not activated: not better on the held-out masks ({reason}; {why})"


def evaluate_model(model: Sam, held: list[tuple[np.ndarray, list[np.ndarray]]], max_clicks: int) -> dict:
    """Click-protocol metrics of ``model`` on held-out (embedding, masks) pairs."""
    settle = (max(REPORTED_CLICKS), 0.90)  # exact for every reported number, far fewer decoder runs
    return metrics(evaluate(held, TorchDecoder(model), max_clicks=max_clicks, settle=settle))


def learn(
    training_images: Callable[[], list[AnnotatedImage]],
    base_model: Sam,
    *,
    model_type: str,
    base_sha256: str,
    versions: ModelVersions,
    embedding_of: Callable[[AnnotatedImage], np.ndarray],
    settings: LearnSettings,
    progress: Progress = lambda event: None,
) -> dict:
    """Train, gate and store a new version (see the module doc). Returns the run's report (``version.json``).

    Arguments:
      training_images: loads the accepted masks to learn from (called once the run holds the lock).
      base_model: the project's base SAM (its mask decoder is never modified).
      embedding_of: the cached float32 [1,256,64,64] embedding of an image; raises to skip it.
      progress: called with ``{"phase", ...}`` events (``phase``: loading, evaluating, training,
        exporting; training events carry ``step``, ``steps``, ``loss``, ``eta_s``).
    Raises:
      UserError: nothing to train on, a run already in progress, export out of tolerance.
    """
    t_start = time.perf_counter()
    with versions.lock():
        versions.remove_partials()
        images = training_images()
        if not images:
            raise UserError("no accepted masks to train on: accept some masks in the page (or import COCO) first")
        progress({"phase": "loading", "message": f"loading the embeddings of {len(images)} images"})
        usable, skipped = [], []
        for im in images:
            if im.unusable:
                skipped.append(f"{im.file_name} ({im.unusable})")
                continue
            try:
                usable.append((im, embedding_of(im)))
            except Exception as exc:  # an unreadable file, a failed embedding: skip the image, say so
                skipped.append(f"{im.file_name} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
        if not usable:
            raise UserError(f"no image with accepted masks has an embedding: {'; '.join(skipped)}")
        embeddings = {im.image_id: emb for im, emb in usable}
        train_images, held_images = split_images([im for im, _ in usable], settings.holdout, settings.train.seed)
        samples: list[ImageSample] = [
            prepare_sample(embeddings[im.image_id], im.masks, im.annotation_ids) for im in train_images
        ]
        held = [(embeddings[im.image_id], im.masks) for im in held_images]

        active = versions.active()
        active_model = base_model if active == BASE else with_mask_decoder(base_model, versions.decoder_state(active))
        before = after = None
        if held:
            progress(
                {"phase": "evaluating", "message": f"evaluating the active version ({active}) on the held-out masks"}
            )
            before = evaluate_model(active_model, held, settings.eval_clicks)

        trained = with_mask_decoder(base_model, base_model.mask_decoder.state_dict())
        train_settings = settings.train
        if settings.minutes is not None:
            train_settings = _sized_for_minutes(trained, samples, settings.train, settings.minutes)

        def on_step(p: TrainProgress) -> None:
            progress(
                {
                    "phase": "training",
                    "step": p.step,
                    "steps": p.steps,
                    "loss": round(p.loss, 5),
                    "eta_s": round(p.eta_s, 1),
                }
            )

        result = train_decoder(trained, samples, train_settings, progress=on_step)
        if held:
            progress({"phase": "evaluating", "message": "evaluating the new version on the held-out masks"})
            after = evaluate_model(trained, held, settings.eval_clicks)
            assert before is not None  # evaluated above: there are held-out masks
            activate, reason = decide(before, after, settings.force)
        else:
            activate, reason = settings.force, "activated without a held-out check (--holdout 0 --force)"

        progress({"phase": "exporting", "message": "exporting and verifying the new decoder"})
        with versions.new_version() as (name, folder):
            torch.save({k: v.cpu() for k, v in trained.mask_decoder.state_dict().items()}, folder / "mask_decoder.pt")
            manifest = _export(
                trained,
                folder / "onnx",
                model_type,
                base_sha256,
                name,
                held or [(samples[0].embedding.numpy(), [])],
                held_images or train_images,
            )
            report = {
                "version": name,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "model_type": model_type,
                "base_checkpoint_sha256": base_sha256,
                "trained_from": BASE,
                "compared_with": active,
                "seed": train_settings.seed,
                "settings": {
                    **asdict(train_settings),
                    "holdout": settings.holdout,
                    "eval_clicks": settings.eval_clicks,
                },
                "device": str(next(trained.mask_decoder.parameters()).device),
                "train": {
                    "images": len(train_images),
                    "masks": sum(len(s.boxes_model) for s in samples),
                    "annotation_ids": [a for s in samples for a in s.annotation_ids],
                    "image_ids": [im.image_id for im in train_images],
                    "steps": result.steps,
                    "seconds": round(result.seconds, 1),
                    "step_seconds_median": round(float(np.median(result.step_seconds)), 3),
                    "step_seconds_p95": round(float(np.percentile(result.step_seconds, 95)), 3),
                    "loss_first_10": round(float(np.mean(result.losses[:10])), 5),
                    "loss_last_10": round(float(np.mean(result.losses[-10:])), 5),
                },
                "holdout": {
                    "images": len(held_images),
                    "masks": sum(len(m) for _, m in held),
                    "annotation_ids": [a for im in held_images for a in im.annotation_ids],
                    "image_ids": [im.image_id for im in held_images],
                },
                "skipped_images": skipped,
                "before": before,
                "after": after,
                "activated": activate,
                "reason": reason,
                "export_verify": {k: d.get("verify") for k, d in manifest["decoders"].items()},
                "seconds": round(time.perf_counter() - t_start, 1),
            }
            write_json_atomic(folder / "version.json", report)
        if activate:
            versions.activate(name, base_sha256)
        return report


def _sized_for_minutes(
    model: Sam, samples: list[ImageSample], settings: TrainSettings, minutes: float
) -> TrainSettings:
    """Settings whose step count fits ``minutes``, from the time of a few probe steps (on a throwaway copy)."""
    from dataclasses import replace

    probe = with_mask_decoder(model, model.mask_decoder.state_dict())
    probe_steps = 5
    result = train_decoder(probe, samples, replace(settings, steps=probe_steps))
    per_step = result.seconds / probe_steps
    steps = max(probe_steps, int(minutes * 60 / max(per_step, 1e-3)))
    return replace(settings, steps=steps)


def _export(
    model: Sam,
    out_dir: Path,
    model_type: str,
    base_sha256: str,
    version: str,
    held: list[tuple[np.ndarray, list[np.ndarray]]],
    images: list[AnnotatedImage],
) -> dict:
    """The browser's decoders of a version (lowres, float16 embedding; fp32 + int8, and the fp32 one split
    into a per-image prefix + per-prompt graph as the base version's), verified on a real embedding."""
    import json

    from maskloop.exporter.onnx_export import export_decoder

    embedding = np.asarray(held[0][0], np.float32)
    hw = images[0].masks[0].shape if images and images[0].masks else (1024, 1024)
    manifest = export_decoder(
        decoder_only_copy(model),
        out_dir,
        model_type=model_type,
        checkpoint_sha256=base_sha256,
        quantize=True,
        verify=True,
        variant="lowres",
        embedding_dtype="float16",
        verify_embedding=embedding,
        verify_image_hw=tuple(hw),
        drop_failing_int8=True,
        prefix=True,
    )
    manifest["model_version"] = version
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
