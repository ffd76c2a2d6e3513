"""Scoring of recorded node outputs against recorded ground truth (the demo report)."""
import copy

import pytest

pytest.importorskip("rclpy")

from hrc_perception.msg import Track, TrackArray  # noqa: E402
from hrc_perception.evaluation.accuracy import segmentation_accuracy, tracking_accuracy  # noqa: E402
from hrc_perception.ros.ground_truth_msgs import frame_ground_truth_msgs  # noqa: E402

GT_TOPIC = "ground_truth/segmentation/instances"


@pytest.fixture(scope="module")
def gt_msgs(small_frames):
    return [frame_ground_truth_msgs(f, "camera")[GT_TOPIC] for f in small_frames]


def _tracks_of(gt, id_offset=0):
    return TrackArray(header=gt.header, tracks=[
        Track(track_id=i.id + id_offset, instance_id=i.id, class_name=i.class_name, class_id=i.class_id,
              state=Track.CONFIRMED, score=1.0, roi=i.roi) for i in gt.instances])


def test_ground_truth_scored_against_itself_is_perfect(gt_msgs, small_frames):
    h, w = small_frames[0].rgb.shape[:2]
    seg = segmentation_accuracy([(g, g) for g in gt_msgs], h, w)
    assert seg["frames"] == len(gt_msgs) and seg["segm_AP50"] == pytest.approx(1.0)
    assert seg["segm_AP50 person"] == pytest.approx(1.0)
    trk = tracking_accuracy([(_tracks_of(g), g) for g in gt_msgs], h, w)
    assert trk["mota"] == pytest.approx(1.0) and trk["idf1"] == pytest.approx(1.0) and trk["id_switches"] == 0


def test_missing_instances_and_switched_ids_are_counted(gt_msgs, small_frames):
    h, w = small_frames[0].rgb.shape[:2]
    fewer = []
    for g in gt_msgs:
        e = copy.deepcopy(g)
        e.instances = [i for i in e.instances if i.class_name != "person"]
        fewer.append((e, g))
    seg = segmentation_accuracy(fewer, h, w)
    assert seg["segm_AP50"] < 1.0 and seg.get("segm_AP50 person", 0.0) == 0.0
    # identities renumbered halfway through: one switch per object scored in both halves (a class
    # and an id, >= 16 visible pixels; here 3: the robot and two people)
    import numpy as np
    half = len(gt_msgs) // 2
    pairs = [(_tracks_of(g, 0 if k < half else 1000), g) for k, g in enumerate(gt_msgs)]
    trk = tracking_accuracy(pairs, h, w)

    def scored(msgs):
        return {(i.class_name, i.id) for g in msgs for i in g.instances if np.count_nonzero(i.mask.data) >= 16}
    assert trk["id_switches"] == len(scored(gt_msgs[:half]) & scored(gt_msgs[half:])) == 3
    assert trk["idf1"] < 1.0


def test_object_pose_accuracy_matches_by_class_and_distance(small_frames):
    import numpy as np

    from hrc_perception.msg import ObjectPose, ObjectPoseArray
    from hrc_perception.evaluation.accuracy import object_pose_accuracy
    from hrc_perception.ros.convert import matrix_to_pose, pose_to_matrix
    gt = frame_ground_truth_msgs(small_frames[0], "camera")["ground_truth/objects/poses"]
    assert len(gt.poses) == 3
    est = ObjectPoseArray(header=gt.header)
    exact, shifted = copy.deepcopy(gt.poses[0]), copy.deepcopy(gt.poses[1])
    T = pose_to_matrix(shifted.pose)
    T[:3, 3] += [0.0, 0.0, 0.03]                 # 3 cm off: more than 10% of any default part's diameter
    shifted.pose = matrix_to_pose(T)
    wrong_class = ObjectPose(class_name="not_a_part", pose=gt.poses[2].pose)
    est.poses = [shifted, exact, wrong_class]
    m = object_pose_accuracy([(est, gt)], 240, 320)
    assert m["parts"] == 3 and m["matched"] == 2
    assert m["add_s_accuracy_0.1d"] == pytest.approx(0.5)
    assert m["t_err_median_cm"] == pytest.approx(1.5, abs=1e-6)      # median of 0 and 3 cm
    per_class = {k.split(" ", 1)[1]: v for k, v in m.items() if k.startswith("matched ")}
    assert sum(int(v.split("/")[0]) for v in per_class.values()) == 2
    assert sum(int(v.split("/")[1]) for v in per_class.values()) == 3
    assert np.isfinite(m["add_s_accuracy_0.1d"])


def test_robot_skeleton_and_base_pose_accuracy(small_frames):
    import numpy as np
    from geometry_msgs.msg import Point

    from hrc_perception.evaluation.accuracy import robot_base_pose_accuracy, robot_skeleton_accuracy
    from hrc_perception.ros.convert import matrix_to_pose, pose_to_matrix
    msgs = [frame_ground_truth_msgs(f, "camera") for f in small_frames[:3]]
    pairs = []
    for m in msgs:
        gt = m["ground_truth/robot/skeleton"]
        est = copy.deepcopy(gt)
        p = est.positions[0]
        est.positions[0] = Point(x=p.x + 0.03, y=p.y, z=p.z)           # 3 cm off
        est.positions[1] = Point(x=float("nan"), y=float("nan"), z=float("nan"))   # not placed
        pairs.append((est, gt))
    r = robot_skeleton_accuracy(pairs, 240, 320)
    in_view = r["joints_in_view"]
    assert r["frames"] == 3 and in_view > 6
    assert r["placed"] == pytest.approx((in_view - 3) / in_view)
    assert r["acc_4cm"] == pytest.approx((in_view - 3) / in_view)
    assert r["mean_err_cm"] == pytest.approx(3.0 * 3 / (in_view - 3), abs=1e-6)
    base = [(copy.deepcopy(m["ground_truth/robot/base_pose"]), m["ground_truth/robot/base_pose"]) for m in msgs]
    T = pose_to_matrix(base[-1][0].pose)
    T[2, 3] += 0.05
    base[-1][0].pose = matrix_to_pose(T)
    b = robot_base_pose_accuracy(base, 240, 320)
    assert b["t_err_median_cm"] == pytest.approx(0.0, abs=1e-6) and b["t_err_last_cm"] == pytest.approx(5.0)
    assert np.isfinite(b["r_err_last_deg"])
