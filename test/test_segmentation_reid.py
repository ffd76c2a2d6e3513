"""The appearance embedding stage (hrc_perception.segmentation.reid): sampling identities
from synth data, the contrastive fit, the separation figures, `train embedding`."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hrc_perception.cli import main  # noqa: E402
from hrc_perception.segmentation import reid  # noqa: E402
from hrc_perception.segmentation.model import BoxEmbedding, load_checkpoint  # noqa: E402


def _samples(reps, identity, episode, frame, cls):
    return reid.IdentitySamples(np.asarray(reps, np.float32), np.asarray(identity, np.int64),
                                np.asarray(episode, np.int64), np.asarray(frame, np.int64), np.asarray(cls))


def test_separation_hand_values():
    # one episode, frames 0 and 1; object 1 does not move in feature space, object 2
    # (same class) is orthogonal to it; object 3 is alone in its class
    reps = [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]]
    s = _samples(reps, [1, 1, 2, 2, 3], [0] * 5, [0, 1, 0, 1, 0], ["a", "a", "a", "a", "b"])
    out = reid.separation(s, torch.eye(3), torch.zeros(3), threshold=0.2)
    assert out["same_object"] == {"pairs": 2, "median": pytest.approx(0.0, abs=1e-6), "under_threshold": 1.0}
    # object 1 vs 2: four pairs, all at cosine distance 1
    assert out["other_object_same_class"] == {"pairs": 4, "median": pytest.approx(1.0), "under_threshold": 0.0}
    assert out["per_class"]["b"]["same_object"] == {"pairs": 0}


def _nuisance_samples(seed, episodes=12, ids=4, frames=6, r=24):
    """Identity in 2 of r dims (small), a large per-sample nuisance in the rest: a
    random projection is dominated by the nuisance, a learned one need not be."""
    rng = np.random.default_rng(seed)
    reps, identity, episode, frame, cls = [], [], [], [], []
    for e in range(episodes):
        centres = rng.normal(0, 1.0, (ids, 2))
        for f in range(frames):
            for i in range(ids):
                x = np.r_[centres[i] + rng.normal(0, 0.05, 2), rng.normal(0, 1.0, r - 2)]
                reps.append(x)
                identity.append(e * reid.IDENTITY_STRIDE + i)
                episode.append(e)
                frame.append(e * frames + f)
                cls.append("part")
    return _samples(reps, identity, episode, frame, cls)


def test_fit_projection_learns_the_identity_subspace():
    train, held_out = _nuisance_samples(0), _nuisance_samples(1)
    init = BoxEmbedding(24, dim=4).projection
    before = reid.separation(held_out, init, torch.zeros(24), threshold=0.2)
    projection, center = reid.fit_projection(train, init, steps=300, temperature=0.1, lr=1e-2)
    after = reid.separation(held_out, projection, center, threshold=0.2)
    assert projection.shape == init.shape and center.shape == (24,)
    assert after["same_object"]["median"] < 0.5 * before["same_object"]["median"]
    assert after["same_object"]["under_threshold"] > before["same_object"]["under_threshold"] + 0.3
    assert after["other_object_same_class"]["median"] > 5 * after["same_object"]["median"]


def test_fit_projection_needs_two_identities_in_an_episode():
    s = _samples([[1.0, 0.0], [0.9, 0.1]], [1, 1], [0, 0], [0, 1], ["a", "a"])
    with pytest.raises(ValueError, match="two or more identities"):
        reid.fit_projection(s, torch.eye(2), steps=1)


@pytest.fixture(scope="module")
def tiny_synth(tiny_seg_data, tmp_path_factory):
    """tiny_seg_data's train/ and val/, and model/: a segmentation model trained 1 step."""
    model_dir = tmp_path_factory.mktemp("reid") / "model"
    assert main(["train", "segmentation", "--data", str(tiny_seg_data / "train"), "--out", str(model_dir),
                 "--max-steps", "1", "--workers", "0", "--input-short-side", "160"]) == 0
    return tiny_seg_data, model_dir


def test_collect_identity_samples_matches_the_annotations(tiny_synth):
    data, model_dir = tiny_synth
    model, _ = load_checkpoint(model_dir / "model.pt")
    s = reid.collect_identity_samples(model, data / "train/coco", max_images=10)
    ann = json.loads((data / "train/coco/annotations.json").read_text())
    kept = [a for a in ann["annotations"] if a["area"] >= 16]
    assert len(s) == len(kept) == s.reps.shape[0]
    assert s.reps.shape[1] == model.roi_heads.box_head.fc7.out_features and np.isfinite(s.reps).all()
    assert len(np.unique(s.identity)) == len({(0, a["track_id"]) for a in kept})   # 4 frames: one episode
    assert set(s.class_name) <= {c["name"] for c in ann["categories"]}


def test_train_embedding_command_writes_model_and_card(tiny_synth, tmp_path, capsys):
    data, model_dir = tiny_synth
    out = tmp_path / "emb"
    assert main(["train", "embedding", "--weights", str(model_dir / "model.pt"), "--data",
                 str(data / "train"), "--val", str(data / "val"), "--out", str(out),
                 "--steps", "20"]) == 0
    assert "wrote" in capsys.readouterr().out
    card = json.loads((out / "model_card.json").read_text())
    section = card["appearance_embedding"]
    assert section["steps"] == 20 and section["samples"] > 0 and section["command"].startswith("hrc-perception")
    sep = section["separation_held_out"]["learned"]
    assert sep["same_object"]["pairs"] > 0 and {"median", "under_threshold"} <= set(sep["same_object"])
    from hrc_perception.training import file_sha256
    assert card["sha256"] == file_sha256(out / "model.pt")
    before, _ = load_checkpoint(model_dir / "model.pt")
    after, _ = load_checkpoint(out / "model.pt")
    assert not torch.equal(before.roi_heads.embedding.projection, after.roi_heads.embedding.projection)
    # The held-out figures of a 1-step detector mean nothing; that the 20 steps fit what they fit can
    # be checked: on the training identities the same object's boxes come closer (median cosine
    # distance measured 4.5e-4 before, 2.1e-5 after)
    import io
    samples = reid.collect_identity_samples(after, data / "train/coco", log=io.StringIO())
    same = {name: reid.separation(samples, m.roi_heads.embedding.projection, m.roi_heads.embedding.center)[
        "same_object"] for name, m in (("before", before), ("after", after))}
    assert same["after"]["pairs"] == same["before"]["pairs"] > 0
    assert same["after"]["median"] < 0.5 * same["before"]["median"], same
    # the detector itself is unchanged
    key = "roi_heads.box_predictor.cls_score.weight"
    assert torch.equal(before.state_dict()[key], after.state_dict()[key])


def test_data_without_identities_leaves_the_embedding(tiny_synth, tmp_path):
    import shutil
    data, model_dir = tiny_synth
    plain = tmp_path / "plain"
    shutil.copytree(data / "train/coco", plain)
    ann = json.loads((plain / "annotations.json").read_text())
    for a in ann["annotations"]:
        del a["track_id"]
    (plain / "annotations.json").write_text(json.dumps(ann))
    model, _ = load_checkpoint(model_dir / "model.pt")
    projection = model.roi_heads.embedding.projection.clone()
    section = reid.learn_embedding(model, plain, steps=5)
    assert "no track_id" in section["reason"]
    assert torch.equal(model.roi_heads.embedding.projection, projection)
    # one object per episode: nothing to contrast, the same
    for a in ann["annotations"]:
        a["track_id"] = 1
    ann["annotations"] = [a for a in ann["annotations"] if a["category_id"] == ann["annotations"][0]["category_id"]]
    ann["annotations"] = list({a["image_id"]: a for a in ann["annotations"]}.values())
    (plain / "annotations.json").write_text(json.dumps(ann))
    section = reid.learn_embedding(model, plain, steps=5)
    assert "two or more identities" in section["reason"]
    assert torch.equal(model.roi_heads.embedding.projection, projection)
