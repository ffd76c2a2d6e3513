"""`hrc-perception train object_pose`: DenseFusion on the synthetic cell's BOP data.

    hrc-perception train object_pose --data SYNTH_OUT --out models/object_pose
        [--val OTHER_SYNTH_OUT] [--steps 6000] [--refine-steps 3000]

Two stages, as DenseFusion trains them: the pose network first, then (the pose
network frozen) the refiner, on the main network's own estimates (half of them moved
further off by up to 10 degrees and 1 cm, so it also learns larger corrections). The run resumes
from ``OUT/checkpoint.pt`` (stage, step, both networks, optimizer, schedule;
written atomically every ``--checkpoint-every`` steps). ``OUT/train_log.jsonl``
gets one line per logged step. At the end ``OUT/model.pt`` and
``OUT/model_card.json``; with ``--val`` the card carries held-out metrics.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hrc_perception.io.atomic import atomic_write_json
from hrc_perception.object_pose.data import CROP_PX, load_bop_split
from hrc_perception.object_pose.dataset import PoseAugment, PoseDataset
from hrc_perception.object_pose.loss import densefusion_loss, refiner_loss
from hrc_perception.object_pose.model import BuildConfig, save_model
from hrc_perception.object_pose.network import compose_correction, quaternion_to_matrix, to_estimate_frame
from hrc_perception.training import (data_spec, epoch_loader, file_sha256, machine_line, optimizer_step,
                                     save_atomic, warmup_cosine)

STAGES = ("posenet", "refiner")
# The refiner also learns from estimates moved further off: a random half of each batch
# gets an extra rotation (random axis, up to this angle) and shift (per axis, up to this).
REFINE_PERTURB_DEG = 10.0
REFINE_PERTURB_M = 0.01


def perturb_estimates(R: torch.Tensor, t: torch.Tensor, max_deg: float = REFINE_PERTURB_DEG,
                      max_shift_m: float = REFINE_PERTURB_M) -> tuple[torch.Tensor, torch.Tensor]:
    """A random half of the estimates (R [B, 3, 3], t [B, 3] metres) turned about a random
    axis through their origin by up to ``max_deg`` and shifted by up to ``max_shift_m``
    per axis; the others unchanged. Uses torch's global generator."""
    B = R.shape[0]
    axis = torch.nn.functional.normalize(torch.randn(B, 3, dtype=R.dtype, device=R.device), dim=1)
    half_angle = torch.rand(B, 1, dtype=R.dtype, device=R.device) * np.deg2rad(max_deg) / 2
    moved = (torch.rand(B, device=R.device) < 0.5).to(R.dtype)
    half_angle = half_angle * moved.unsqueeze(1)
    dR = quaternion_to_matrix(torch.cat([half_angle.cos(), half_angle.sin() * axis], dim=1))
    shift = (torch.rand(B, 3, dtype=R.dtype, device=R.device) * 2 - 1) * max_shift_m * moved.unsqueeze(1)
    return dR @ R, t + shift


def refine_passes(refiner, batch: dict, R: torch.Tensor, t: torch.Tensor, col: torch.Tensor, iterations: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Refiner training passes from the estimate (R [B, 3, 3], t [B, 3]): each pass is
    scored (ADD(-S) in metres) and its gradient stops at its input pose. Returns
    (sum of the passes' losses, final R, final t)."""
    total = 0.0
    for _ in range(iterations):
        dq, dt = refiner(to_estimate_frame(batch["points"], R, t), col, batch["cls"])
        R_new, t_new = compose_correction(R, t, quaternion_to_matrix(dq), dt)
        total = total + refiner_loss(R_new, t_new, batch["model_pts"], batch["R_gt"], batch["t_gt"],
                                     batch["symmetric"])
        R, t = R_new.detach(), t_new.detach()
    return total, R, t


def train(data: Path, out: Path, val: Path | None = None, steps: int = 6000, refine_steps: int = 3000,
          batch_size: int = 16, lr: float = 1e-3, refine_lr: float = 3e-4, n_points: int = 128,
          crop_px: int = CROP_PX, refine_iterations: int = 2, device: str = "cpu", seed: int = 0,
          checkpoint_every: int = 200, log_every: int = 20, workers: int = 1, threads: int | None = None,
          init: Path | None = None, fresh_refiner: bool = False) -> dict:
    """Train (or resume) both stages and write the model and its card; returns the card.

    init: a model file to start both networks from (same parts, embedding and crop
    side; the points per instance may differ) instead of random weights; ignored when
    resuming from a checkpoint. fresh_refiner: with init, only the pose network comes
    from it and the refiner starts from scratch."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    parts, samples = load_bop_split(Path(data), crop_px=crop_px)
    obj_ids = sorted(parts)
    dataset = PoseDataset(samples, parts, obj_ids, n_points, PoseAugment(), seed=seed)
    build = BuildConfig(num_classes=len(obj_ids), crop_px=crop_px, n_points=n_points,
                        refine_iterations=refine_iterations)
    posenet, refiner = build.build()
    posenet.to(device)
    refiner.to(device)
    class_names = [parts[o].name for o in obj_ids]
    steps_per_epoch = len(dataset) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{data}: {len(dataset)} instances, fewer than one batch of {batch_size}")
    print(f"train object_pose: {len(dataset)} instances of {len(obj_ids)} parts ({', '.join(class_names)}), "
          f"{steps_per_epoch} steps per epoch", file=sys.stderr)

    def make_optimizer(stage: str):
        net, base_lr, total = (posenet, lr, steps) if stage == "posenet" else (refiner, refine_lr, refine_steps)
        opt = torch.optim.Adam(net.parameters(), lr=base_lr)
        warmup = min(200, total // 10 + 1)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total, warmup))

    stage, step, elapsed = "posenet", 0, {"posenet": 0.0, "refiner": 0.0}
    optimizer, scheduler = make_optimizer(stage)
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ckpt["class_names"] != class_names:
            raise ValueError(f"{ckpt_path}: trained for parts {ckpt['class_names']}, data has {class_names}; "
                             f"use another --out")
        posenet.load_state_dict(ckpt["posenet"])
        refiner.load_state_dict(ckpt["refiner"])
        stage, step, elapsed = ckpt["stage"], ckpt["step"], ckpt["elapsed_s"]
        optimizer, scheduler = make_optimizer(stage)
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        print(f"train object_pose: resuming {stage} at step {step}", file=sys.stderr)
    elif init is not None:
        from hrc_perception.object_pose.model import load_model
        init_build, init_net, init_ref, init_card = load_model(init)
        if init_card["classes"] != class_names or not init_build.same_weights_as(build):
            raise ValueError(f"{init}: a model for parts {init_card['classes']} built as {init_build}; this run "
                             f"needs parts {class_names} with embed_dim {build.embed_dim} and crop_px "
                             f"{build.crop_px}")
        posenet.load_state_dict(init_net.state_dict())
        if init_ref is not None and not fresh_refiner:
            refiner.load_state_dict(init_ref.state_dict())
        print(f"train object_pose: starting from {init}{' (pose network only)' if fresh_refiner else ''}",
              file=sys.stderr)

    def checkpoint():
        save_atomic({"posenet": posenet.state_dict(), "refiner": refiner.state_dict(), "stage": stage, "step": step,
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "elapsed_s": elapsed,
                     "class_names": class_names}, ckpt_path)

    log = open(out / "train_log.jsonl", "a")
    for stage_name, total in (("posenet", steps), ("refiner", refine_steps)):
        if STAGES.index(stage_name) < STAGES.index(stage):
            continue
        if stage_name != stage:
            stage, step = stage_name, 0
            optimizer, scheduler = make_optimizer(stage)
        posenet.train(stage == "posenet")
        refiner.train(stage == "refiner")
        t_last = time.perf_counter()
        while step < total:
            epoch = step // steps_per_epoch
            for batch in epoch_loader(dataset, batch_size, epoch, seed, step % steps_per_epoch, workers):
                batch = {k: v.to(device) for k, v in batch.items()}
                if stage == "posenet":
                    q, t_pts, conf, _ = posenet(batch["crop"], batch["points"], batch["choose"], batch["cls"])
                    loss, d = densefusion_loss(quaternion_to_matrix(q), t_pts, conf, batch["model_pts"],
                                               batch["R_gt"], batch["t_gt"], batch["symmetric"])
                    best = d.gather(1, conf.argmax(1, keepdim=True)).mean()
                else:
                    with torch.no_grad():
                        q, t_pts, conf, col = posenet(batch["crop"], batch["points"], batch["choose"], batch["cls"])
                        pick = conf.argmax(1)
                        rows = torch.arange(len(pick))
                        R0, t0 = perturb_estimates(quaternion_to_matrix(q[rows, pick]), t_pts[rows, pick])
                    loss, R, t = refine_passes(refiner, batch, R0, t0, col, refine_iterations)
                    with torch.no_grad():
                        best = refiner_loss(R, t, batch["model_pts"], batch["R_gt"], batch["t_gt"],
                                            batch["symmetric"])
                optimizer_step(loss, optimizer, scheduler, f"{stage} step {step}")
                step += 1
                now = time.perf_counter()
                elapsed[stage] += now - t_last
                t_last = now
                if step % log_every == 0 or step == total:
                    rec = {"stage": stage, "step": step, "epoch": epoch, "loss": round(loss.item(), 6),
                           "add_s_m": round(best.item(), 5), "lr": scheduler.get_last_lr()[0],
                           "elapsed_s": round(elapsed[stage], 1)}
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                    print(f"train object_pose: {stage} step {step}/{total} loss {rec['loss']:.4f} "
                          f"ADD(-S) of the estimate {100 * rec['add_s_m']:.2f} cm "
                          f"({elapsed[stage] / step:.2f} s/step)", file=sys.stderr)
                if step % checkpoint_every == 0 or step == total:
                    checkpoint()
                if step >= total:
                    break
    log.close()

    card = {
        "component": "object_pose",
        "architecture": "DenseFusion: colour encoder-decoder (per-pixel 32-d embedding of a square crop), "
                        "PointNet-style geometric embedding, per-pixel fusion with a global feature, per-pixel "
                        "rotation/translation/confidence; iterative refiner",
        "classes": class_names, "diameters_m": [parts[o].diameter_m for o in obj_ids],
        "symmetric": [parts[o].symmetric for o in obj_ids],
        "crop_px": crop_px, "n_points": n_points, "refine_iterations": refine_iterations,
        "data": data_spec(Path(data)), "seed": seed, "steps": steps, "refine_steps": refine_steps,
        "batch_size": batch_size, "lr": lr, "refine_lr": refine_lr,
        "training_command": "hrc-perception " + " ".join(sys.argv[1:]),
        "training_time_s": {k: round(v, 1) for k, v in elapsed.items()},
        "machine": machine_line(device),
    }
    if init is not None:
        from hrc_perception.object_pose.model import load_model
        card["initialised_from"] = {"weights": str(init), "sha256": file_sha256(Path(init)),
                                    "networks": "pose network" if fresh_refiner else "pose network and refiner",
                                    "card": load_model(init)[3]}
    model_path = out / "model.pt"
    part_points = [parts[o].points_m for o in obj_ids]     # for pose verification at inference
    save_model(model_path, build, posenet, refiner, card, part_points)
    if val is not None:
        from hrc_perception.object_pose.evaluate import evaluate
        card["metrics_held_out"] = evaluate(model_path, Path(val), device=device, baselines=False)["summary"]
        card["metrics_data"] = data_spec(Path(val))
        save_model(model_path, build, posenet, refiner, card, part_points)
    card["weights"] = model_path.name
    card["sha256"] = file_sha256(model_path)
    atomic_write_json(out / "model_card.json", card, indent=2)
    return card
