"""The inference engines (hrc_perception/engines.py) agree with torch on the shipped networks."""
import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from hrc_perception.engines import ENGINES, as_module, compile_network  # noqa: E402

OTHER = [pytest.param(e, marks=pytest.mark.skipif(importlib.util.find_spec(e) is None, reason=f"{e} not installed"))
         for e in ENGINES[1:]]


@pytest.fixture(scope="module")
def frame():
    from hrc_perception.sim.config import CellConfig
    from hrc_perception.sim.generator import SynthRun
    return next(iter(SynthRun(CellConfig(), seed=981).frames(1)))


@pytest.mark.parametrize("engine", OTHER)
def test_a_small_network_of_every_shape_agrees_and_keeps_its_output_structure(engine):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return {"a": y, "b": torch.logsumexp(y.flatten(2), dim=2)}
    net = Net().eval()
    wrapped = as_module(net, engine)
    for shape in ((1, 3, 16, 20), (1, 3, 8, 8), (1, 3, 16, 20)):       # a new shape compiles, an old one is kept
        x = torch.rand(shape)
        out, ref = wrapped(x), net(x)
        assert list(out) == ["a", "b"] and out["a"].shape == ref["a"].shape
        assert all(torch.allclose(out[k], ref[k].detach(), atol=1e-4) for k in ref)
    assert as_module(net, "torch") is net
    with pytest.raises(ValueError, match="engine must be one of"):
        compile_network(net, (torch.rand(1, 3, 8, 8),), "tensorrt")


@pytest.mark.parametrize("engine", OTHER)
def test_robot_pose_by_the_engine_is_torchs_within_a_hundredth_of_a_millimetre(engine, frame):
    from hrc_perception.robot_pose.predictor import RobotPosePredictor
    depth = frame.depth_mm.astype(np.float64) / 1000.0
    ref = RobotPosePredictor("models/robot_pose/model.pt").predict(depth, frame.K)
    got = RobotPosePredictor("models/robot_pose/model.pt", engine=engine).predict(depth, frame.K)
    assert np.array_equal(got.valid, ref.valid) and ref.valid.sum() >= 4
    assert np.abs(got.xyz_cam_m[ref.valid] - ref.xyz_cam_m[ref.valid]).max() < 1e-5


@pytest.mark.parametrize("engine", OTHER)
def test_segmentation_by_the_engine_finds_what_torch_finds(engine, frame):
    from hrc_perception.segmentation.predictor import SegmentationPredictor
    ref = SegmentationPredictor("models/segmentation/model.pt").predict(frame.rgb)
    got = SegmentationPredictor("models/segmentation/model.pt", engine=engine).predict(frame.rgb)
    assert len(ref.scores) >= 1 and len(got.scores) == len(ref.scores)
    assert np.abs(got.boxes_xyxy - ref.boxes_xyxy).max() < 0.01 and np.abs(got.scores - ref.scores).max() < 1e-4
    assert np.array_equal(got.labels, ref.labels)
