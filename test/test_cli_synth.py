"""`hrc-perception synth` and `preview` end to end, determinism, and bad input."""
import filecmp
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hrc_perception.cli import main


@pytest.fixture(scope="module")
def synth_dirs(tmp_path_factory, small_cell_yaml):
    outs = []
    for name in ("a", "b"):
        out = tmp_path_factory.mktemp("synth") / name
        rc = main(["synth", "--config", str(small_cell_yaml), "--frames", "6", "--seed", "5", "--out", str(out),
                   "--bag", "--dataset", "coco,bop,keypoints", "--quiet"])
        assert rc == 0
        outs.append(out)
    return outs


def test_synth_writes_everything(synth_dirs):
    out = synth_dirs[0]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["frames"] == 6 and meta["episodes"] == 2 and meta["seed"] == 5
    assert meta["outputs"] == ["ground_truth.jsonl", "bag", "coco", "bop", "keypoints"]
    assert [c["name"] for c in meta["classes"][:2]] == ["panda", "person"]
    assert (out / "bag" / "bag.mcap").is_file()
    coco = json.loads((out / "coco" / "annotations.json").read_text())
    assert len(coco["images"]) == 6 and len(coco["annotations"]) > 6
    assert sorted(p.name for p in (out / "bop" / "train").iterdir()) == ["000000", "000001"]
    assert (out / "keypoints" / "index.json").is_file()
    assert len((out / "ground_truth.jsonl").read_text().splitlines()) == 6
    assert not list(out.glob("*.partial"))


def test_same_seed_gives_identical_bytes(synth_dirs):
    a, b = synth_dirs
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) > 30
    for rel in files:
        if rel.name == "meta.json":
            continue
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel
    ma, mb = (json.loads((d / "meta.json").read_text()) for d in (a, b))
    ma.pop("command"), mb.pop("command")
    assert ma == mb


def test_preview_contact_sheet(synth_dirs, tmp_path):
    png = tmp_path / "sheet.png"
    assert main(["preview", str(synth_dirs[0]), "--out", str(png), "--rows", "3"]) == 0
    im = np.asarray(Image.open(png))
    assert im.shape == (3 * 120, 3 * 160, 3)
    assert im.std() > 20   # a picture, not a blank sheet


def test_preview_of_unfinished_output_is_an_error(tmp_path, capsys):
    assert main(["preview", str(tmp_path)]) == 2
    assert "no meta.json" in capsys.readouterr().err


@pytest.mark.parametrize("yaml_text, expected", [
    ("parts: {source: /no/such/folder}\n", "parts.source"),
    ("robot: {urdf: /no/such/robot.urdf}\n", "robot.urdf: URDF file not found: /no/such/robot.urdf"),
    ("humans: {count: [1, 1], fall_probability: 2.0}\n", "humans.fall_probability"),
    ("humans: {script: dance}\n", "humans.script: must be one of random, walk_at_robot"),
    ("parts: {names: [gear, sprocket]}\n", "sprocket"),
])
def test_bad_config_fails_cleanly(tmp_path, capsys, yaml_text, expected):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    out = tmp_path / "out"
    rc = main(["synth", "--config", str(cfg), "--frames", "2", "--out", str(out), "--bag", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and expected in err and "error" in err
    assert not (out / "meta.json").exists() and not (out / "bag").exists()


def test_unknown_dataset_format(tmp_path, capsys, small_cell_yaml):
    rc = main(["synth", "--config", str(small_cell_yaml), "--frames", "1", "--out", str(tmp_path / "o"),
               "--dataset", "coco,voc", "--quiet"])
    assert rc == 2 and "unknown format 'voc'" in capsys.readouterr().err


LMO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "cell_lmo_parts.yaml"
LMO_MODELS = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "lmo" / "models"


@pytest.mark.skipif(not LMO_MODELS.is_dir(), reason="../shared/realdata (LM-O meshes) not present")
def test_mesh_folder_parts(tmp_path):
    """The LM-O meshes as parts: classes named by file, vertex colours rendered."""
    out = tmp_path / "lmo"
    assert main(["synth", "--config", str(LMO_CONFIG), "--frames", "1", "--seed", "2", "--out", str(out),
                 "--dataset", "bop", "--quiet"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    names = [c["name"] for c in meta["classes"] if c["category"] == "part"]
    assert names == [f"obj_{i:06d}" for i in (1, 5, 6, 8, 9, 10, 11, 12)]
    info = json.loads((out / "bop" / "models" / "models_info.json").read_text())
    ref = json.loads((LMO_MODELS / "models_info.json").read_text())
    assert info["1"]["diameter"] == pytest.approx(ref["1"]["diameter"], rel=1e-3)


def test_interrupted_run_leaves_nothing_that_looks_complete(tmp_path, small_cell_yaml, monkeypatch):
    """A run that dies after two frames leaves only .partial outputs and no meta.json."""
    from hrc_perception.sim.generator import SynthRun
    real_frames = SynthRun.frames

    def dying_frames(self, count, start=0):
        for k, frame in enumerate(real_frames(self, count, start)):
            if k == 2:
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(SynthRun, "frames", dying_frames)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        main(["synth", "--config", str(small_cell_yaml), "--frames", "5", "--out", str(out), "--bag",
              "--dataset", "coco,bop,keypoints", "--quiet"])
    names = sorted(p.name for p in out.iterdir())
    assert "meta.json" not in names
    assert not {"bag", "coco", "bop", "keypoints", "ground_truth.jsonl"} & set(names)
    assert all(n.endswith(".partial") for n in names), names
