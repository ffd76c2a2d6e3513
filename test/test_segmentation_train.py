"""`hrc-perception train segmentation` and `eval segmentation` end to end on a tiny dataset:
checkpoints, resume, log, model card, COCO metrics."""
import json

import pytest

from hrc_perception.cli import main


@pytest.fixture(scope="module")
def tiny_data(tiny_seg_data):
    return tiny_seg_data


def test_train_resume_and_evaluate(tiny_data, tmp_path, capsys):
    out = tmp_path / "model"
    args = ["train", "segmentation", "--data", str(tiny_data / "train"), "--out", str(out), "--batch-size", "2",
            "--checkpoint-every", "1", "--workers", "0", "--input-short-side", "160"]
    assert main(args + ["--max-steps", "2"]) == 0
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2]
    assert all(k in log[0] for k in ("loss", "loss_mask", "loss_classifier", "lr"))
    assert (out / "checkpoint.pt").is_file()

    assert main(args + ["--max-steps", "3", "--val", str(tiny_data / "val")]) == 0   # resumes at step 2
    assert "resuming at step 2" in capsys.readouterr().err
    card = json.loads((out / "model_card.json").read_text())
    assert card["steps"] == 3 and card["classes"][:2] == ["panda", "person"]
    assert card["data"]["seed"] == 11 and card["metrics_data"]["seed"] == 12
    m = card["metrics_held_out"]
    assert m["images"] == 4 and {"segm_AP50", "bbox_AP", "per_class_segm_AP50"} <= set(m)
    # A 3-step model's AP means nothing; the scoring that gives it can be checked: the held-out
    # ground truth fed back as the detections scores box and mask AP 1.0
    from pycocotools.coco import COCO

    from hrc_perception.segmentation.evaluate import coco_metrics
    coco = COCO(str(tiny_data / "val" / "coco" / "annotations.json"))
    truth = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0, "bbox": a["bbox"],
              "segmentation": a["segmentation"]} for a in coco.dataset["annotations"]]
    perfect = coco_metrics(coco, truth, sorted(coco.getImgIds()))
    assert perfect["bbox_AP"] == pytest.approx(1.0) and perfect["segm_AP"] == pytest.approx(1.0), perfect
    assert len(card["sha256"]) == 64

    metrics_json = tmp_path / "eval.json"
    assert main(["eval", "segmentation", "--weights", str(out / "model.pt"), "--data", str(tiny_data / "val"),
                 "--json", str(metrics_json)]) == 0
    printed = capsys.readouterr().out
    assert "segm_AP50" in printed
    saved = json.loads(metrics_json.read_text())
    assert saved["segm_AP50"] == pytest.approx(m["segm_AP50"], abs=1e-9) and "command" in saved


def test_resume_with_other_classes_is_refused(tiny_data, tmp_path, small_cell_yaml):
    out = tmp_path / "model"
    base = ["train", "segmentation", "--out", str(out), "--max-steps", "1", "--workers", "0",
            "--input-short-side", "160", "--checkpoint-every", "1"]
    assert main(base + ["--data", str(tiny_data / "train")]) == 0
    other = tmp_path / "other"
    cfg = tmp_path / "lmo.yaml"
    cfg.write_text(small_cell_yaml.read_text() + "parts: {names: [gear, bolt], count: [2, 2]}\n")
    assert main(["synth", "--config", str(cfg), "--frames", "2", "--out", str(other), "--dataset", "coco",
                 "--quiet"]) == 0
    assert main(base + ["--data", str(other)]) == 2


def test_init_from_weights_and_learned_embedding(tiny_data, tmp_path, capsys):
    import torch

    from hrc_perception.segmentation.model import load_checkpoint
    first, second = tmp_path / "first", tmp_path / "second"
    base = ["train", "segmentation", "--data", str(tiny_data / "train"), "--max-steps", "1", "--workers", "0",
            "--input-short-side", "160"]
    assert main(base + ["--out", str(first)]) == 0
    model, _ = load_checkpoint(first / "model.pt")
    assert model.roi_heads.embedding.center.abs().sum() > 0        # centred on the training boxes, not zero
    section = json.loads((first / "model_card.json").read_text())["appearance_embedding"]
    assert section["samples"] > 0 and section["identities"] > 1    # learned from the data's identities

    assert main(base + ["--out", str(second), "--init", str(first / "model.pt"), "--lr", "0"]) == 0
    assert "starting from" in capsys.readouterr().err
    card = json.loads((second / "model_card.json").read_text())
    assert card["initialised_from"]["sha256"] == json.loads((first / "model_card.json").read_text())["sha256"]
    again, _ = load_checkpoint(second / "model.pt")
    a, b = model.state_dict(), again.state_dict()
    trunk = "backbone.body.18.0.weight"
    assert torch.equal(a[trunk], b[trunk])                             # lr 0: the start weights are kept


def test_init_from_a_model_with_other_classes_keeps_the_shared_layers(tiny_data, tmp_path, small_cell_yaml, capsys):
    import torch

    from hrc_perception.segmentation.model import load_checkpoint
    first = tmp_path / "first"
    base = ["train", "segmentation", "--max-steps", "1", "--workers", "0", "--input-short-side", "160"]
    assert main(base + ["--data", str(tiny_data / "train"), "--out", str(first)]) == 0
    other = tmp_path / "other"
    cfg = tmp_path / "two_parts.yaml"
    cfg.write_text(small_cell_yaml.read_text() + "parts: {names: [gear, bolt], count: [2, 2]}\n")
    assert main(["synth", "--config", str(cfg), "--frames", "2", "--out", str(other), "--dataset", "coco",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(base + ["--data", str(other), "--out", str(tmp_path / "second"), "--init",
                        str(first / "model.pt"), "--lr", "0"]) == 0
    err = capsys.readouterr().err
    assert "start fresh" in err and "box_predictor.cls_score.weight" in err
    a, _ = load_checkpoint(first / "model.pt")
    b, card = load_checkpoint(tmp_path / "second/model.pt")
    assert card["class_names"] == ["panda", "person", "gear", "bolt"]
    assert torch.equal(a.state_dict()["backbone.fpn.layer_blocks.0.0.weight"],
                       b.state_dict()["backbone.fpn.layer_blocks.0.0.weight"])
