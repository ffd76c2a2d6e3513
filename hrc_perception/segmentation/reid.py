"""The appearance embedding (Deep SORT's descriptor) learned from synthetic identities.

A detection's descriptor is ``normalize(P @ (r - c))``: ``r`` [R] is the box head's
representation of the box (RoIAlign of the FPN features through the two-layer MLP,
:meth:`EmbeddingRoIHeads.box_representations`), ``c`` [R] its mean over training
boxes, ``P`` [D, R] a projection (:class:`BoxEmbedding`). The detector is trained
first; this stage then fits ``P`` alone, the detector frozen:

- samples: the representations of the ground-truth boxes (edges jittered by a few
  percent of the box size, as a detector's boxes are) of frames of a
  ``hrc-perception synth --dataset coco`` output, whose annotations carry ``episode``
  (per image) and ``track_id`` (per object, stable through the episode);
- loss: supervised contrastive (temperature ``temperature``) over batches of a few
  episodes: a box's positives are the other boxes of the same object, every other box
  is a negative, including the same part type elsewhere in the cell. Identical parts
  differ only by pose, light and surroundings, so those stay hard; people, the robot
  and different part types separate well.

``separation`` measures what the tracker needs: the cosine distance between boxes of
the same object a few frames apart (should be under the tracker's threshold) and
between different objects of the same class in the same episode.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

#: A sample's identity: episode * IDENTITY_STRIDE + track_id (unique over a dataset).
IDENTITY_STRIDE = 1_000_000


@dataclass
class IdentitySamples:
    """Box-head representations of ground-truth boxes with their identities.

    reps [N, R] float32; identity [N] int64 (unique over the dataset); episode [N] and
    frame [N] int64 (frame: the image's index within the dataset, in time order);
    class_name [N] str.
    """
    reps: np.ndarray
    identity: np.ndarray
    episode: np.ndarray
    frame: np.ndarray
    class_name: np.ndarray

    def __len__(self) -> int:
        return len(self.identity)


def collect_identity_samples(model, coco_root: Path, max_images: int = 900, box_jitter: float = 0.05,
                             min_area_px: float = 16.0, seed: int = 0, batch_size: int = 4,
                             log=None) -> IdentitySamples:
    """Representations of the (jittered) ground-truth boxes of up to ``max_images``
    frames of a synth COCO folder (read by :func:`tracking.evaluate.load_sequences`),
    evenly spaced over all its frames. The model is put in eval mode. ValueError when
    the annotations have no ``track_id`` or no box."""
    from hrc_perception.tracking.evaluate import jittered_boxes_xyxy, load_sequences
    log = log or sys.stderr
    frames = [(seq.episode, path, gt) for seq in load_sequences(Path(coco_root), min_area_px)
              for path, gt in zip(seq.images, seq.gt)]
    picks = [int(k) for k in np.unique(np.linspace(0, len(frames) - 1, min(max_images, len(frames))).round())
             if len(frames[int(k)][2].ids)]
    rng = np.random.default_rng(seed)
    model.eval()
    device = next(model.parameters()).device
    reps, identity, episode, frame, cls = [], [], [], [], []
    with torch.inference_mode():
        for start in range(0, len(picks), batch_size):
            tensors, targets = [], []
            for k in picks[start:start + batch_size]:
                ep, path, gt = frames[k]
                rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
                tensors.append(torch.from_numpy(rgb / 255.0).permute(2, 0, 1).contiguous().to(device))
                xyxy = jittered_boxes_xyxy(gt.tlwh, rng, box_jitter)
                targets.append({"boxes": torch.from_numpy(xyxy.astype(np.float32)).to(device)})
                identity += [ep * IDENTITY_STRIDE + int(i) for i in gt.ids]
                episode += [ep] * len(gt.ids)
                frame += [k] * len(gt.ids)
                cls += gt.classes
            image_list, targets = model.transform(tensors, targets)
            features = model.backbone(image_list.tensors)
            reps.append(model.roi_heads.box_representations(features, [t["boxes"] for t in targets],
                                                            image_list.image_sizes).float().cpu().numpy())
            if (start // batch_size) % 50 == 0:
                print(f"embedding samples: {start + len(tensors)}/{len(picks)} images", file=log)
    if not reps:
        raise ValueError(f"{coco_root}: no boxes to learn the appearance embedding from")
    return IdentitySamples(np.concatenate(reps), np.array(identity, np.int64), np.array(episode, np.int64),
                           np.array(frame, np.int64), np.array(cls))


def _embed(reps: torch.Tensor, projection: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize((reps - center) @ projection.T, dim=1)


def fit_projection(samples: IdentitySamples, init_projection: torch.Tensor, steps: int = 600,
                   episodes_per_step: int = 4, temperature: float = 0.1, lr: float = 1e-3, seed: int = 0,
                   log=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Learn the projection [D, R] (starting from ``init_projection``) with the
    supervised contrastive loss; returns (projection [D, R], center [R]) float32.
    Needs at least two identities in some episode (ValueError otherwise)."""
    log = log or sys.stderr
    reps = torch.from_numpy(samples.reps.astype(np.float32))
    center = reps.mean(dim=0)
    episodes = [e for e in np.unique(samples.episode)
                if len(np.unique(samples.identity[samples.episode == e])) >= 2]
    if not episodes:
        raise ValueError("fit_projection: no episode with two or more identities")
    rows_of = {e: np.flatnonzero(samples.episode == e) for e in episodes}
    identity = torch.from_numpy(samples.identity)
    projection = init_projection.detach().clone().float().requires_grad_(True)
    opt = torch.optim.Adam([projection], lr=lr)
    rng = np.random.default_rng(seed)
    for step in range(1, steps + 1):
        chosen = rng.choice(len(episodes), size=min(episodes_per_step, len(episodes)), replace=False)
        rows = torch.from_numpy(np.concatenate([rows_of[episodes[k]] for k in chosen]))
        y = _embed(reps[rows], projection, center)
        ids = identity[rows]
        logits = y @ y.T / temperature
        self_mask = torch.eye(len(rows), dtype=torch.bool)
        logits = logits.masked_fill(self_mask, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positive = (ids[:, None] == ids[None, :]) & ~self_mask
        has_pos = positive.any(dim=1)
        loss = -(log_prob.masked_fill(~positive, 0.0).sum(dim=1)[has_pos] / positive.sum(dim=1)[has_pos]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps:
            print(f"embedding fit: step {step}/{steps} loss {loss.item():.3f}", file=log)
    return projection.detach(), center


@torch.no_grad()
def separation(samples: IdentitySamples, projection: torch.Tensor, center: torch.Tensor,
               threshold: float = 0.2, max_frame_gap: int = 10) -> dict:
    """Cosine distances between boxes of the same episode at most ``max_frame_gap``
    frames apart (and not in the same frame for same-object pairs): per class and
    overall, the median distance of same-object pairs and of different-object pairs of
    the same class, and the share of each under ``threshold``."""
    y = _embed(torch.from_numpy(samples.reps.astype(np.float32)), projection, center).numpy()
    same: dict[str, list] = {}
    diff: dict[str, list] = {}
    for e in np.unique(samples.episode):
        rows = np.flatnonzero(samples.episode == e)
        d = 1.0 - y[rows] @ y[rows].T
        gap = np.abs(samples.frame[rows][:, None] - samples.frame[rows][None, :])
        ids = samples.identity[rows]
        cls = samples.class_name[rows]
        near = (gap <= max_frame_gap) & np.triu(np.ones_like(gap, dtype=bool), k=1)
        same_cls = cls[:, None] == cls[None, :]
        for c in np.unique(cls):
            pair_c = near & same_cls & (cls[:, None] == c)
            same.setdefault(str(c), []).append(d[pair_c & (ids[:, None] == ids[None, :]) & (gap > 0)])
            diff.setdefault(str(c), []).append(d[pair_c & (ids[:, None] != ids[None, :])])

    def stats(chunks: list) -> dict:
        v = np.concatenate(chunks) if chunks else np.zeros(0)
        if len(v) == 0:
            return {"pairs": 0}
        return {"pairs": int(len(v)), "median": float(np.median(v)), "under_threshold": float((v <= threshold).mean())}

    out = {"threshold": threshold, "max_frame_gap": max_frame_gap,
           "same_object": stats(sum(same.values(), [])), "other_object_same_class": stats(sum(diff.values(), [])),
           "per_class": {c: {"same_object": stats(same[c]), "other_object_same_class": stats(diff[c])}
                         for c in sorted(same)}}
    return out


def learn_embedding(model, data: Path, val: Path | None = None, max_images: int = 1200, steps: int = 600,
                    temperature: float = 0.3, threshold: float = 0.2, seed: int = 0, log=None) -> dict:
    """The embedding stage: collect samples of ``data`` (a synth output or its coco
    folder), fit the projection, set it (and the centre) in ``model``. Returns the
    model card's ``appearance_embedding`` section, with the separation on ``val``
    (held-out, another seed) when given. Data without identities (not a synth output)
    leaves the embedding as it is; the section then says why."""
    from hrc_perception.segmentation.dataset import coco_dir
    log = log or sys.stderr
    emb = model.roi_heads.embedding
    try:
        samples = collect_identity_samples(model, coco_dir(data), max_images=max_images, seed=seed, log=log)
        projection, center = fit_projection(samples, emb.projection.cpu(), steps=steps, temperature=temperature,
                                            seed=seed, log=log)
    except ValueError as e:
        print(f"appearance embedding not learned: {e}", file=log)
        return {"method": "not learned (kept as it was)", "reason": str(e)}
    section = {"method": "box-head representation, centred, linear projection learned with a supervised "
                         "contrastive loss on synthetic identities (hrc_perception.segmentation.reid)",
               "data": str(data), "images": int(len(np.unique(samples.frame))), "samples": len(samples),
               "identities": int(len(np.unique(samples.identity))), "steps": steps, "temperature": temperature}
    if val is not None:
        try:
            held_out = collect_identity_samples(model, coco_dir(val), max_images=max_images // 4, seed=seed + 1,
                                                log=log)
            section["separation_held_out"] = {
                "data": str(val), "before": separation(held_out, emb.projection.cpu(), emb.center.cpu(), threshold),
                "learned": separation(held_out, projection, center, threshold)}
        except ValueError as e:
            section["separation_held_out"] = {"data": str(val), "skipped": str(e)}
    emb.projection.copy_(projection.to(emb.projection.device))
    emb.center.copy_(center.to(emb.center.device))
    return section


def learn_embedding_for_weights(weights: Path, data: Path, out: Path, val: Path | None = None,
                                max_images: int = 1200, steps: int = 600, seed: int = 0, log=None) -> dict:
    """``hrc-perception train embedding``: the embedding stage alone on a trained model
    (the detector is unchanged). Writes ``out/model.pt`` and ``out/model_card.json``
    (the card next to ``weights`` when there is one, else the checkpoint's own, with
    the new ``appearance_embedding`` section and sha256); returns the card."""
    from hrc_perception.io.atomic import atomic_write_json
    from hrc_perception.segmentation.model import load_checkpoint, save_checkpoint
    weights, out = Path(weights), Path(out)
    model, card = load_checkpoint(weights)
    card_file = weights.parent / "model_card.json"
    if card_file.is_file():
        card = json.loads(card_file.read_text())
    card["appearance_embedding"] = learn_embedding(model, data, val, max_images=max_images, steps=steps,
                                                   seed=seed, log=log)
    card["appearance_embedding"]["command"] = "hrc-perception " + " ".join(sys.argv[1:])
    out.mkdir(parents=True, exist_ok=True)
    card.pop("sha256", None)
    card["sha256"] = save_checkpoint(model, out / "model.pt", card)
    card["weights"] = "model.pt"
    atomic_write_json(out / "model_card.json", card, indent=2)
    return card
