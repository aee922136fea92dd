"""One turn of the data engine's loop: train a new model version on a project's accepted masks.

``learn`` gathers the accepted masks of the store (stages manual, semi and import: masks a
person made, checked or brought; never the unreviewed ``auto`` stage) and splits the *images*
three ways: training, a selection split that picks the best checkpoint of the run
(``engine.checkpoints``), and the gate's split, which nothing else sees. It measures the active
version (and the base model) with the click protocol of ``maskloop evaluate`` on the gate's split
and on the generic photo check set, fine-tunes the base model's mask decoder on all the accepted
masks (the active version's with ``continue_active``: measured worse, see docs/models-and-training.md)
(``train.train_decoder``) for a number of steps or minutes while the picker keeps the best
checkpoint, measures that checkpoint the same way, exports its decoders (verified against
PyTorch) and writes a new version with the gate's table (``engine.gate``). The version becomes
active only if every row of the gate holds (or when forced). Used by ``maskloop train``, the
server's ``POST /api/train`` and ``maskloop replay``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from maskloop.engine import gate
from maskloop.engine.checkpoints import Cancelled, CheckpointPicker, Split, click_protocol
from maskloop.engine.photo_replay import ReplayPhoto
from maskloop.engine.train import TrainProgress, TrainResult, TrainSettings, train_decoder
from maskloop.engine.train_samples import ImageSample, prepare_sample
from maskloop.engine.version_export import export_version
from maskloop.engine.versions import BASE, ModelVersions, with_mask_decoder, write_json_atomic
from maskloop.errors import UserError

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: Stages whose accepted masks a person made, checked or imported (``auto`` is nobody's).
TRAINABLE_STAGES = ("manual", "semi", "import")
#: Fewer annotated images than this: no separate selection split (the gate's split chooses the checkpoint).
MIN_SELECTION_IMAGES = 6
MINUTES_MAX_STEPS = 1_000_000  # ``--minutes`` runs stop on time; this only bounds the step count

Progress = Callable[[dict], None]


class TrainingCancelled(UserError):
    """A run stopped by its ``should_stop``; nothing was written."""


@dataclass
class LearnSettings:
    train: TrainSettings = field(default_factory=TrainSettings)
    holdout: float = 0.2  # share of annotated images held out for the gate
    eval_clicks: int = 20  # click protocol length (NoC@85/90 count up to it)
    selection: float = 0.15  # share of annotated images that choose the best checkpoint (apart from the gate's)
    minutes: float | None = None  # train this long instead of ``train.steps`` (checkpoint evaluations included)
    patience: int = 4  # stop after this many checkpoints in a row without a better one (0 = never)
    force: bool = False  # activate even if not better
    continue_active: bool = False  # start from the active version's decoder, not the base model's


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


def _masks(samples: Sequence[ImageSample]) -> int:
    """How many accepted masks ``samples`` train on."""
    return sum(len(s.boxes_model) for s in samples)


def split_images(
    images: list[AnnotatedImage], holdout: float, seed: int, selection: float = 0.0
) -> tuple[list[AnnotatedImage], list[AnnotatedImage], list[AnnotatedImage]]:
    """(train, selection, gate) by image: a seeded hash of each image's content orders them; the first
    ``ceil(holdout * n)`` are the gate's (at least one when ``holdout`` > 0), the next
    ``ceil(selection * n)`` choose the checkpoint (none when fewer than ``MIN_SELECTION_IMAGES``
    images: the gate's split then chooses too, and the report says so). Training keeps at least one."""
    if holdout <= 0:
        return images, [], []
    if len(images) < 2:
        raise UserError(
            f"only {len(images)} annotated image(s): the held-out check needs at least 2 "
            "(annotate another image, or pass --holdout 0 --force to train without a check)"
        )
    key = lambda im: hashlib.sha256(f"{seed}:{im.sha256}".encode()).hexdigest()  # noqa: E731
    ordered = sorted(images, key=key)
    n_gate = min(len(images) - 1, max(1, int(np.ceil(holdout * len(images)))))
    n_select = 0
    if selection > 0 and len(images) >= MIN_SELECTION_IMAGES:
        n_select = min(len(images) - n_gate - 1, max(1, int(np.ceil(selection * len(images)))))
    by_id = lambda ims: sorted(ims, key=lambda im: im.image_id)  # noqa: E731
    return by_id(ordered[n_gate + n_select :]), by_id(ordered[n_gate : n_gate + n_select]), by_id(ordered[:n_gate])


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
    should_stop: Callable[[], bool] = lambda: False,
    generic_set: Callable[[], Split] | None = None,
    replay_set: Callable[[], Sequence[ReplayPhoto]] | None = None,
) -> dict:
    """Train, gate and store a new version (see the module doc). Returns the run's report (``version.json``).

    Arguments:
      training_images: loads the accepted masks to learn from (called once the run holds the lock).
      base_model: the project's base SAM (its mask decoder is never modified).
      embedding_of: the cached float32 [1,256,64,64] embedding of an image; raises to skip it.
      progress: called with ``{"phase", ...}`` events (``phase``: loading, evaluating, training,
        selecting, exporting; training events carry ``step``, ``steps``, ``loss``, ``eta_s``,
        ``elapsed_s`` and ``best``, the best checkpoint so far: ``{"step", "score"}`` or None).
      should_stop: asked between steps and images; yes cancels the run (``TrainingCancelled``)
        and nothing is written.
      generic_set: the generic photo check set's (embedding, masks) per image, for the gate's
        forgetting rows (``engine.checkset``); None leaves those rows out.
      replay_set: the photos of the distillation term (``engine.photo_replay``); None or an empty
        list turns it off.
    Raises:
      UserError: nothing to train on, a run already in progress, export out of tolerance;
      TrainingCancelled (a UserError) when ``should_stop`` said so.
    """
    t_start = time.perf_counter()
    with versions.lock():
        versions.remove_partials()
        try:
            return _learn_locked(
                training_images,
                base_model,
                model_type,
                base_sha256,
                versions,
                embedding_of,
                settings,
                progress,
                should_stop,
                generic_set,
                replay_set,
                t_start,
            )
        except Cancelled:
            raise TrainingCancelled("training cancelled: no version was written") from None


def _learn_locked(
    training_images: Callable[[], list[AnnotatedImage]],
    base_model: Sam,
    model_type: str,
    base_sha256: str,
    versions: ModelVersions,
    embedding_of: Callable[[AnnotatedImage], np.ndarray],
    settings: LearnSettings,
    progress: Progress,
    should_stop: Callable[[], bool],
    generic_set: Callable[[], Split] | None,
    replay_set: Callable[[], Sequence[ReplayPhoto]] | None,
    t_start: float,
) -> dict:
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
    train_images, select_images, gate_images = split_images(
        [im for im, _ in usable], settings.holdout, settings.train.seed, settings.selection
    )
    samples: list[ImageSample] = [
        prepare_sample(embeddings[im.image_id], im.masks, im.annotation_ids) for im in train_images
    ]
    gate_split: Split = [(embeddings[im.image_id], im.masks) for im in gate_images]
    select_split: Split = [(embeddings[im.image_id], im.masks) for im in select_images] or gate_split
    generic: Split = generic_set() if generic_set and gate_split else []

    active = versions.active()
    active_model = base_model if active == BASE else with_mask_decoder(base_model, versions.decoder_state(active))
    clicks = settings.eval_clicks

    def measure(model: Sam, split: Split, with_generic: bool) -> dict[str, Any]:
        result = click_protocol(model, split, clicks, should_stop)
        generic_result = click_protocol(model, generic, 5, should_stop) if with_generic and generic else None
        return gate.metrics(result, generic_result)

    compared = base = select_reference = None
    if gate_split:
        progress({"phase": "evaluating", "message": f"evaluating the active version ({active}) on the held-out masks"})
        compared = measure(active_model, gate_split, with_generic=True)
        base = compared if active == BASE else measure(base_model, gate_split, with_generic=True)
        select_reference = compared if not select_images else measure(active_model, select_split, False)
        select_reference = gate.with_base_generic(select_reference, base)

    start_from, start_model = (active, active_model) if settings.continue_active else (BASE, base_model)
    trained = with_mask_decoder(base_model, start_model.mask_decoder.state_dict())
    picker = None
    if select_reference is not None:
        picker = CheckpointPicker(
            trained, select_split, select_reference, clicks, should_stop, generic, settings.patience
        )
    replay = list(replay_set()) if replay_set and settings.train.replay_weight > 0 else []
    base_state = base_model.mask_decoder.state_dict()
    result = _train(trained, samples, settings, picker, progress, should_stop, replay, base_state)
    if should_stop():
        raise Cancelled()
    after = None
    if picker is not None:
        progress(
            {"phase": "selecting", "message": "choosing the checkpoint (a blend with the base weights if none passed)"}
        )
        picker.finish()
        assert compared is not None and base is not None
        progress({"phase": "evaluating", "message": "evaluating the new version on the held-out masks"})
        after = measure(trained, gate_split, with_generic=True)
        more_data = active != BASE and _masks(samples) > versions.info(active)["train"]["masks"]
        activate, gate_record, reason = gate.decide(base, compared, after, active, settings.force, more_data)
    else:
        activate, gate_record = settings.force, None
        reason = "activated without a held-out check (--holdout 0 --force)"
    if should_stop():
        raise Cancelled()

    progress({"phase": "exporting", "message": "exporting and verifying the new decoder"})
    with versions.new_version() as (name, folder):
        torch.save({k: v.cpu() for k, v in trained.mask_decoder.state_dict().items()}, folder / "mask_decoder.pt")
        check = gate_split or [(samples[0].embedding.numpy(), [])]
        shown = gate_images or train_images
        hw = shown[0].masks[0].shape if shown and shown[0].masks else (1024, 1024)
        manifest = export_version(trained, folder / "onnx", model_type, base_sha256, name, check[0][0], hw)
        report = {
            "version": name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model_type": model_type,
            "base_checkpoint_sha256": base_sha256,
            "trained_from": start_from,
            "compared_with": active,
            "seed": settings.train.seed,
            "settings": {
                **asdict(settings.train),
                "minutes": settings.minutes,
                "holdout": settings.holdout,
                "selection": settings.selection,
                "eval_clicks": settings.eval_clicks,
            },
            "device": str(next(trained.mask_decoder.parameters()).device),
            "train": {
                "images": len(train_images),
                "masks": _masks(samples),
                "annotation_ids": [a for s in samples for a in s.annotation_ids],
                "image_ids": [im.image_id for im in train_images],
                "steps": result.steps,
                "replay_photos": len(replay),
                "seconds": round(result.seconds, 1),
                "step_seconds_median": round(float(np.median(result.step_seconds)), 3),
                "step_seconds_p95": round(float(np.percentile(result.step_seconds, 95)), 3),
                "loss_first_10": round(float(np.mean(result.losses[:10])), 5),
                "loss_last_10": round(float(np.mean(result.losses[-10:])), 5),
            },
            "holdout": _split_record(gate_images),
            "selection": {
                **_split_record(select_images),
                "split": "selection" if select_images else "gate (too few images for a separate selection split)",
                "every_steps": settings.train.checkpoint_every,
                **(picker.summary() if picker else {}),
            },
            "skipped_images": skipped,
            "before": _public(compared),
            "base": _public(base),
            "after": _public(after),
            "gate": gate_record,
            "activated": activate,
            "reason": reason,
            "export_verify": {k: d.get("verify") for k, d in manifest["decoders"].items()},
            "seconds": round(time.perf_counter() - t_start, 1),
        }
        write_json_atomic(folder / "version.json", report)
    if activate:
        versions.activate(name, base_sha256)
    return report


def _split_record(images: list[AnnotatedImage]) -> dict[str, Any]:
    return {
        "images": len(images),
        "masks": sum(len(im.masks) for im in images),
        "annotation_ids": [a for im in images for a in im.annotation_ids],
        "image_ids": [im.image_id for im in images],
    }


def _public(m: dict[str, Any] | None) -> dict[str, Any] | None:
    """Gate metrics without the per-object lists (kept out of version.json)."""
    return None if m is None else {k: v for k, v in m.items() if k != "per_object"}


def _train(
    model: Sam,
    samples: list[ImageSample],
    settings: LearnSettings,
    picker: CheckpointPicker | None,
    progress: Progress,
    should_stop: Callable[[], bool],
    replay: list[ReplayPhoto],
    base_state: dict[str, torch.Tensor],
) -> TrainResult:
    """``train_decoder`` for the steps or minutes (evaluations included) of ``settings``, or until the picker's patience ends."""
    t0 = time.perf_counter()
    budget = None if settings.minutes is None else settings.minutes * 60
    train_settings = settings.train if budget is None else replace(settings.train, steps=MINUTES_MAX_STEPS)

    def out_of_time() -> bool:
        spent = budget is not None and time.perf_counter() - t0 >= budget
        return should_stop() or spent or (picker is not None and picker.exhausted())

    def on_step(p: TrainProgress) -> None:
        elapsed = time.perf_counter() - t0
        if budget is None:
            steps, eta = p.steps, p.eta_s
        else:  # steps are what fits the time left at the pace so far
            eta = max(0.0, budget - elapsed)
            steps = p.step + int(eta / max(elapsed / p.step, 1e-3))
        best = picker.best if picker else None
        progress(
            {
                "phase": "training",
                "step": p.step,
                "steps": steps,
                "loss": round(p.loss, 5),
                "eta_s": round(eta, 1),
                "elapsed_s": round(elapsed, 1),
                "best": None if best is None else {"step": best.step, "score": round(best.score, 4)},
            }
        )

    return train_decoder(
        model,
        samples,
        train_settings,
        progress=on_step,
        should_stop=out_of_time,
        on_checkpoint=picker,
        replay=replay,
        reference=base_state,
    )
