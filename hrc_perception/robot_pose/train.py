"""`hrc-perception train robot_pose`: the SPDH network on a synth output's keypoints data.

    hrc-perception train robot_pose --data SYNTH_OUT [SYNTH_OUT ...] --out models/robot_pose
        [--val OTHER_SYNTH_OUT] [--steps 3000] [--batch-size 8]

Several ``--data`` folders (rendered with the same robot) are trained on together.

Loss (:func:`spdh_loss`): per heatmap channel with a target, the cross-entropy between
the target Gaussian (normalised to a distribution) and the spatial softmax of the
logits; plus the binary cross-entropy of each joint's presence logit (in view or
not); plus (:func:`depth_map_loss`, 10 per metre) the error of the column head's
per-pixel joint depths near each joint, which the uz plane is built from. (A
mean-squared error on the heatmaps, the usual choice, had learned nothing after 1000
steps here: the all-zero map is a deep local minimum.) The run
resumes from ``OUT/checkpoint.pt`` (written atomically every ``--checkpoint-every``
steps); ``OUT/train_log.jsonl`` gets one line per logged step. At the end
``OUT/model.pt`` and ``OUT/model_card.json``; with ``--val`` the card carries
held-out metrics.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from hrc_perception.io.atomic import atomic_write_json
from hrc_perception.robot_pose.dataset import (RobotAugment, RobotPoseDataset, concat_robot_frames,
                                              load_robot_frames)
from hrc_perception.robot_pose.model import BuildConfig, load_model, save_model
from hrc_perception.sim.export import read_meta
from hrc_perception.training import (data_spec, epoch_loader, file_sha256, machine_line, optimizer_step,
                                     save_atomic, warmup_cosine)

DEPTH_MAP_WEIGHT = 10.0      # per metre of mean error


def depth_map_loss(z_joint_m: torch.Tensor, has_depth: torch.Tensor, target: torch.Tensor,
                   joint_z_m: torch.Tensor, near: float = 0.3) -> torch.Tensor:
    """Mean |z_joint - z_true| (metres) over the pixels near each joint (its uv target
    above ``near``) that have input depth: the column head's depth estimates
    [B, J, h, w] learn directly where the attention will look. joint_z_m [B, J]."""
    J = z_joint_m.shape[1]
    mask = (target[:, :J] > near) & has_depth.unsqueeze(1)
    if not mask.any():
        return z_joint_m.sum() * 0.0
    return (z_joint_m - joint_z_m[:, :, None, None]).abs()[mask].mean()


def spdh_loss(logits: torch.Tensor, presence_logits: torch.Tensor, target: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, heatmap part, presence part) for logits [B, 2J, h, w], presence logits
    [B, J] and SPDH targets [B, 2J, h, w] (all-zero channels: joint not in view).

    Heatmap part: mean over target channels of -sum(q log softmax(logits)), q the
    target normalised to sum 1. Presence part: BCE of presence against 'both planes
    of the joint have a target'."""
    B, C = logits.shape[:2]
    J = C // 2
    t = target.flatten(2)
    mass = t.sum(-1)
    has = mass > 0
    logp = torch.log_softmax(logits.flatten(2), dim=-1)
    ce = -(t / mass.clamp_min(1e-12).unsqueeze(-1) * logp).sum(-1)
    heat = ce[has].mean() if has.any() else logits.sum() * 0.0
    present = (has[:, :J] & has[:, J:]).to(presence_logits.dtype)
    pres = torch.nn.functional.binary_cross_entropy_with_logits(presence_logits, present)
    return heat + pres, heat, pres


def robot_of_run(synth_dir: Path) -> dict:
    """The robot a synth output was rendered with: name, urdf, keypoint links (its meta.json)."""
    r = read_meta(synth_dir)["config"]["robot"]
    return {"name": r["name"], "urdf": r["urdf"], "keypoints": list(r["keypoints"]),
            "gripper_link": r["gripper_link"]}


def fit_spdh(net: torch.nn.Module, dataset, out: Path, label: str, run_id: dict, steps: int, batch_size: int,
             lr: float, device: str = "cpu", seed: int = 0, checkpoint_every: int = 200, log_every: int = 20,
             workers: int = 1, init_state: dict | None = None) -> tuple[torch.nn.Module, float]:
    """Train an SPDH network (:class:`~hrc_perception.robot_pose.network.SPDHNet`) on a
    dataset of (input, target heatmaps, joint depths) with :func:`spdh_loss` +
    :func:`depth_map_loss`; AdamW, warm-up + cosine schedule. Resumes from
    ``out/checkpoint.pt`` when its ``run_id`` (keypoints, build) equals this run's
    (ValueError otherwise); else starts from init_state when given. Logs to
    ``out/train_log.jsonl`` and stderr (prefixed ``train {label}``). Returns (net,
    training seconds)."""
    net = net.to(device)
    steps_per_epoch = len(dataset) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{len(dataset)} samples, fewer than one batch of {batch_size}")
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    warmup = min(200, steps // 10 + 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, steps, warmup))
    step, elapsed = 0, 0.0
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        if {k: ckpt.get(k) for k in run_id} != run_id:
            raise ValueError(f"{ckpt_path}: a run of {({k: ckpt.get(k) for k in run_id})}; this one is {run_id}: "
                             "use another --out")
        net.load_state_dict(ckpt["net"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        step, elapsed = ckpt["step"], ckpt["elapsed_s"]
        print(f"train {label}: resuming at step {step}", file=sys.stderr)
    elif init_state is not None:
        net.load_state_dict(init_state)
        print(f"train {label}: starting from the given model", file=sys.stderr)

    def checkpoint():
        save_atomic({"net": net.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "step": step, "elapsed_s": elapsed, **run_id}, ckpt_path)

    net.train()
    t_last = time.perf_counter()
    with open(out / "train_log.jsonl", "a") as log:
        while step < steps:
            epoch = step // steps_per_epoch
            for x, target, joint_z in epoch_loader(dataset, batch_size, epoch, seed, step % steps_per_epoch,
                                                   workers):
                x, target, joint_z = x.to(device), target.to(device), joint_z.to(device)
                logits, presence, z_joint, has_depth = net(x, with_depth_map=True)
                loss, heat, pres = spdh_loss(logits, presence, target)
                zl1 = depth_map_loss(z_joint, has_depth, target, joint_z)
                loss = loss + DEPTH_MAP_WEIGHT * zl1
                optimizer_step(loss, optimizer, scheduler, f"step {step}")
                step += 1
                now = time.perf_counter()
                elapsed += now - t_last
                t_last = now
                if step % log_every == 0 or step == steps:
                    rec = {"step": step, "epoch": epoch, "loss": round(loss.item(), 5),
                           "heatmap_ce": round(heat.item(), 5), "presence_bce": round(pres.item(), 5),
                           "depth_map_l1_m": round(zl1.item(), 5),
                           "lr": scheduler.get_last_lr()[0], "elapsed_s": round(elapsed, 1)}
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                    print(f"train {label}: step {step}/{steps} loss {rec['loss']:.4f} (heatmaps "
                          f"{rec['heatmap_ce']:.3f}, presence {rec['presence_bce']:.3f}, depth map "
                          f"{100 * rec['depth_map_l1_m']:.1f} cm) ({elapsed / step:.2f} s/step)", file=sys.stderr)
                if step % checkpoint_every == 0 or step == steps:
                    checkpoint()
                if step >= steps:
                    break
    return net, elapsed


def train(data: Path | list[Path], out: Path, val: Path | None = None, steps: int = 3000, batch_size: int = 8,
          lr: float = 2e-3, build: BuildConfig | None = None, device: str = "cpu", seed: int = 0,
          checkpoint_every: int = 200, log_every: int = 20, workers: int = 1, threads: int | None = None,
          init: Path | None = None) -> dict:
    """Train (or resume) and write the model and its card; returns the card.
    data: one synth output or several (same robot). init: a model file to start
    from (same build) when there is no checkpoint."""
    folders = [Path(d) for d in (data if isinstance(data, (list, tuple)) else [data])]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    robot = robot_of_run(folders[0])
    for d in folders[1:]:
        if robot_of_run(d) != robot:
            raise ValueError(f"{d} was rendered with robot {robot_of_run(d)}, {folders[0]} with {robot}")
    frames = concat_robot_frames([load_robot_frames(d) for d in folders])
    names = list(frames.keypoint_names)
    if build is None:
        build = BuildConfig(num_joints=len(names), input_hw=tuple(frames.xyz_m.shape[1:3]))
    if tuple(build.input_hw) != tuple(frames.xyz_m.shape[1:3]) or build.num_joints != len(names):
        raise ValueError(f"{', '.join(map(str, folders))}: XYZ images {frames.xyz_m.shape[1:3]} and {len(names)} "
                         f"keypoints do not fit the build {build}")
    dataset = RobotPoseDataset(frames, build.heatmap_spec, RobotAugment(), seed=seed)
    print(f"train robot_pose: {len(dataset)} frames, {len(names)} keypoints ({', '.join(names)}), "
          f"input {build.input_hw}, heatmaps {build.heatmap_spec.hw}", file=sys.stderr)
    init_state, init_card = None, None
    if init is not None:
        init_build, init_net, init_card = load_model(init)
        if init_build != build or init_card["keypoints"] != names:
            raise ValueError(f"{init}: built as {init_build} for {init_card['keypoints']}; this run needs {build} "
                             f"for {names}")
        init_state = init_net.state_dict()
    net, elapsed = fit_spdh(build.build(), dataset, out, "robot_pose", {"keypoints": names, "build": build.to_dict()},
                            steps=steps, batch_size=batch_size, lr=lr, device=device, seed=seed,
                            checkpoint_every=checkpoint_every, log_every=log_every, workers=workers,
                            init_state=init_state)

    card = {
        "component": "robot_pose",
        "architecture": "SPDH: U-Net on the XYZ image (strides 2-16, dilated residual blocks at stride 16), "
                        "per joint a uv-plane and a uz-plane heatmap at stride 2 (spatial softmax, cross-entropy "
                        "to Gaussian targets) and a presence logit",
        "keypoints": names, "robot": robot,
        "input_hw": list(build.input_hw), "heatmap_hw": list(build.heatmap_spec.hw),
        "z_range_m": list(build.z_range_m), "sigma_px": build.sigma_px,
        "data": data_spec(folders[0]) if len(folders) == 1 else [data_spec(d) for d in folders],
        "seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr,
        "training_command": "hrc-perception " + " ".join(sys.argv[1:]),
        "training_time_s": round(elapsed, 1), "machine": machine_line(device),
    }
    if init_card is not None:
        card["initialised_from"] = {"weights": str(init), "sha256": file_sha256(init), "card": init_card}
    model_path = out / "model.pt"
    save_model(model_path, build, net, card)
    if val is not None:
        from hrc_perception.robot_pose.evaluate import evaluate
        card["metrics_held_out"] = evaluate(model_path, Path(val), device=device)["summary"]
        card["metrics_data"] = data_spec(Path(val))
        save_model(model_path, build, net, card)
    card["weights"] = model_path.name
    card["sha256"] = file_sha256(model_path)
    atomic_write_json(out / "model_card.json", card, indent=2)
    return card
