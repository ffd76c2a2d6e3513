"""Safety evaluation: ground-truth verdicts of a person walking up to the robot, the
comparison figures (confusion, OK-while-stop count, onset latencies, distance error,
camera-to-verdict latency) on hand-made statuses, the occlusion floor on a hand-made depth
image, and the timeline figure."""
from dataclasses import replace

import numpy as np
import pytest
from test_safety_core import ROBOT_NAMES, robot_at, standing_person

from hrc_perception.geometry import make_K
from hrc_perception.safety.carving import pool_depth
from hrc_perception.safety.evaluate import (StatusRecord, TruthFrame, availability_ceiling, compare,
                                            ground_truth_verdicts, occlusion_floor, timeline_figure)
from hrc_perception.skeletons import COCO17_NAMES
from hrc_perception.safety.monitor import OK, PROTECTIVE_STOP, UNKNOWN, WARNING, MonitorParams


def walking_truth(n=20, dt=0.1):
    """A person walking from x = -3 m towards a robot at x = 0 at 1 m/s (camera frame)."""
    frames = []
    for k in range(n):
        x = -3.0 + 1.0 * k * dt * 1.5
        frames.append(TruthFrame(10.0 + k * dt, ROBOT_NAMES, robot_at(0.0).positions_m, {1: standing_person(x)}))
    return frames


def test_ground_truth_levels_go_ok_warning_stop_with_the_true_speed():
    truth = ground_truth_verdicts(walking_truth(), MonitorParams())
    levels = [truth[s].level for s in sorted(truth)]
    assert levels[0] in (OK, WARNING) and levels[-1] == PROTECTIVE_STOP
    assert levels == sorted(levels)            # closer and closer: never back to a lower level
    # the first frame has no speed yet (1.6 m/s assumed); later the true 1.5 m/s
    s = sorted(truth)
    assert truth[s[0]].separation_m > truth[s[1]].separation_m


def test_the_monitors_rule_on_perfect_data_stops_sooner_than_the_truth():
    """A person walking at 0.3 m/s: the truth judges that speed with no uncertainty; the
    monitor's own rule on the same true skeletons takes its floors (1.6 / 2.0 m/s) and
    position uncertainty, and its S_p grows with the inputs' age: it lets the robot move in
    fewer frames, never more, and the ceiling says which share of the truth's."""
    frames = [TruthFrame(10.0 + k * 0.1, ROBOT_NAMES, robot_at(0.0).positions_m, {1: standing_person(-2.5 + 0.03 * k)})
              for k in range(60)]
    truth = ground_truth_verdicts(frames, MonitorParams())
    rules = [ground_truth_verdicts(frames, MonitorParams(), rule_age_s=a) for a in (0.0, 0.1, 0.2)]
    s = sorted(truth)[5]
    assert truth[s].separation_m < rules[0][s].separation_m < rules[1][s].separation_m < rules[2][s].separation_m
    ceilings = [availability_ceiling(truth, r) for r in rules]
    assert 0.0 < ceilings[0] < 1.0 and ceilings == sorted(ceilings, reverse=True)
    for r in rules:
        assert all(truth[t].level in (OK, WARNING) for t in r if r[t].level in (OK, WARNING))
    # without floors and uncertainty, at age 0, the rule is the truth: it moves wherever the truth does
    bare = MonitorParams(separation=replace(MonitorParams().separation, human_uncertainty_m=0.0,
                                            robot_uncertainty_m=0.0), min_human_speed_mps=0.0, min_arm_speed_mps=0.0)
    assert availability_ceiling(truth, ground_truth_verdicts(frames, bare, rule_age_s=0.0)) == 1.0


def test_compare_counts_and_latencies():
    truth = ground_truth_verdicts(walking_truth(), MonitorParams())
    stamps = sorted(truth)
    onset = next(s for s in stamps if truth[s].level == PROTECTIVE_STOP)
    statuses = []
    for s in stamps:
        t = truth[s]
        # the estimate: 0.3 s late, 5 cm short; it says OK for the onset frame (a miss), then UNKNOWN
        # once, then PROTECTIVE_STOP
        level = t.level
        if s == onset:
            level = OK
        elif s == stamps[stamps.index(onset) + 1]:
            level = UNKNOWN
        statuses.append(StatusRecord(s, s + 0.3, level, t.min_distance_m - 0.05, 0.3))
        statuses.append(StatusRecord(s, s + 0.35, level, t.min_distance_m - 0.05, 0.35))  # a timer repeat
    res = compare(statuses, truth, stamps, people_stamps=stamps)
    assert res["frames_with_truth"] == len(stamps)
    assert res["ok_while_truth_stop"] == 1
    assert res["confusion_estimate_vs_truth"]["UNKNOWN|PROTECTIVE_STOP"] == 1
    assert sum(res["confusion_estimate_vs_truth"].values()) == len(stamps)
    assert res["distance_error_median_m"] == pytest.approx(0.05)
    assert res["distance_bias_median_m"] == pytest.approx(-0.05)
    assert res["camera_to_verdict_latency_ms_median"] == pytest.approx(300.0)
    assert res["truth_stop_onsets"] == 1
    # the first PROTECTIVE_STOP is two frames after the onset (received 0.3 s after its frame)
    k = stamps.index(onset)
    assert res["stop_latency_frames_median"] == 2
    assert res["stop_latency_ms_median"] == pytest.approx((stamps[k + 2] + 0.3 - onset) * 1e3)
    assert res["stop_or_unknown_latency_ms_median"] == pytest.approx((stamps[k + 1] + 0.3 - onset) * 1e3)
    # availability: every frame the truth lets the robot move, the estimate does (its level is the truth's
    # there); half the truth's speed is not known (no speed_scale): none counts
    moves = sum(t.level in (0, 1) for t in truth.values())
    assert res["truth_moves_frames"] == moves > 0 and res["availability"] == 1.0
    assert res["availability_at_half_speed"] == 0.0
    slow = [StatusRecord(x.stamp_s, x.recv_s, x.level, x.min_distance_m, x.data_age_s,
                         0.5 * truth[x.stamp_s].speed_scale) for x in statuses]
    assert compare(slow, truth, stamps, people_stamps=stamps)["availability_at_half_speed"] == 1.0


def test_timeline_figure_is_written(tmp_path):
    truth = ground_truth_verdicts(walking_truth(), MonitorParams())
    statuses = [StatusRecord(s, s + 0.2, v.level, v.min_distance_m, 0.2) for s, v in truth.items()]
    path = tmp_path / "timeline.png"
    timeline_figure(statuses, truth, path)
    from PIL import Image
    assert Image.open(path).size[0] > 500
    with pytest.raises(ValueError):
        timeline_figure([], truth, path)
    assert np.isfinite([v.min_distance_m for v in truth.values()]).all()


def test_occlusion_floor_from_the_visible_joints():
    """A person 2 m left of the robot (both 3 m from the camera). Every joint visible:
    no error. Knees and ankles not visible: their reach spheres from the hips come near
    the robot; the depth image (the person's silhouette, a wall 2 m behind) carves them to
    what is behind the silhouette, never farther than the truth."""
    K = make_K(250.0, 250.0, 319.5, 239.5)          # at 3 m: u = 319.5 + 83 x, v = 239.5 + 83 y
    depth = np.full((480, 640), 5.0, np.float32)
    depth[85:245, 150:220] = 3.0                     # the person, x -1.95 .. -1.25 m, y -1.8 .. 0 m
    depth[70:176, 341:365] = 3.0                     # the robot, x = 0.4, y -2.0 .. -0.8 m
    person = standing_person(-1.6)
    all_seen = np.ones(17, bool)
    legs_hidden = np.array([not n.endswith(("knee", "ankle")) for n in COCO17_NAMES])
    robot = robot_at(0.4).positions_m
    depths = {1.0: pool_depth(depth, K), 2.0: pool_depth(depth, K)}
    params = MonitorParams()
    seen = occlusion_floor([TruthFrame(1.0, ROBOT_NAMES, robot, {1: person}, {1: all_seen})], depths, params)
    assert seen["frames"] == 1 and seen["distance_error_median_m"] == pytest.approx(0.0, abs=1e-9)
    hidden = occlusion_floor([TruthFrame(2.0, ROBOT_NAMES, robot, {1: person}, {1: legs_hidden})], depths, params)
    assert hidden["frames"] == 1 and hidden["frames_farther_than_truth"] == 0
    # whole spheres: the hip's sphere (the leg's reach, 1.12 m, and the foot), 1.8 m from
    # the robot's axis, vs the truth's right side (the hand's sphere at the wrist, also at
    # x + 0.2): an error of the sphere's radius minus the hand's
    body = params.body
    assert hidden["whole_spheres_distance_error_median_m"] == pytest.approx(
        1.12 + body.foot_radius_m - body.hand_radius_m, abs=0.01)
    assert hidden["distance_error_median_m"] < hidden["whole_spheres_distance_error_median_m"] - 0.4
    # frames without depth or visibility are left out
    assert occlusion_floor([TruthFrame(3.0, ROBOT_NAMES, robot, {1: person}, {1: all_seen}),
                            TruthFrame(1.0, ROBOT_NAMES, robot, {1: person})], depths, params)["frames"] == 0
