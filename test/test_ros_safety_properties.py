"""Property-based test of the safety_monitor node over real rclpy and DDS: hypothesis
generates sequences of camera frames (robot skeleton, person tracks, people) whose
skeletons may be corrupt (NaN, inf, huge, 100 m, another model, 16 joints, duplicated ids),
whose tracks coast, get deleted or hold people never seen, whose stamps repeat, go back,
jump an hour ahead or a minute back, interleaved with bad camera_info and depth images and
parameter changes. After every frame the node's status about it is checked against what
the test sent (`safety_oracle`): OK or WARNING only when every person the tracker holds
has a valid skeleton (of this frame, or an earlier one grown by the time since) whose
margin allows it; no exception escapes a callback; statuses keep coming.

CI runs a fixed, bounded set of sequences (derandomized); ``make fuzz`` (HRC_FUZZ=1) a
long random campaign."""
import math
import os

import numpy as np
import pytest
from conftest import QOS, spin_until
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rclpy.parameter import Parameter
from safety_oracle import margin_upper_bound_m
from sensor_msgs.msg import CameraInfo, Image

from hrc_perception.geometry import make_K
from hrc_perception.msg import SafetyStatus, Skeleton, SkeletonArray, Track, TrackArray
from hrc_perception.ros.convert import K_to_camera_info, numpy_to_image
from hrc_perception.ros.ground_truth_msgs import make_header
from hrc_perception.ros.safety_monitor_node import (CAMERA_INFO_TOPIC, DEPTH_TOPIC, HUMANS_TOPIC, ROBOT_TOPIC,
                                                    STATUS_TOPIC, TRACKS_TOPIC, SafetyMonitorNode)
from hrc_perception.safety.monitor import monitor_params
from test_ros_safety_monitor import FRAME_ID, person_msg, robot_msg

FUZZ = os.environ.get("HRC_FUZZ") == "1"     # `make fuzz`: a long, random campaign
EXAMPLES = int(os.environ.get("HRC_FUZZ_EXAMPLES", 1000)) if FUZZ else 25
CAMPAIGN = settings(max_examples=EXAMPLES, derandomize=not FUZZ, deadline=None,
                    suppress_health_check=list(HealthCheck))

T0 = 5_000 * 10**9
MS = 10**6
ROBOT_M = np.array([[p.x, p.y, p.z] for p in robot_msg(0).positions])
CORRUPTIONS = ["none"] * 12 + ["nan_joints", "inf", "huge", "far", "model", "short"]
STEPS = [100 * MS] * 16 + [0, -50 * MS, 3600 * 10**9, -60 * 10**9]
SAFETY_PARAMS = {"reaction_time_s": st.floats(0.0, 1.0), "stopping_time_s": st.floats(0.0, 1.0),
                 "min_human_speed_mps": st.floats(0.0, 2.0), "min_arm_speed_mps": st.floats(0.0, 2.5),
                 "warning_margin_m": st.floats(0.0, 1.0), "robot_link_radius_m": st.floats(0.0, 0.3)}


@st.composite
def frames(draw):
    """One step of a sequence: ('frame', stamp step ns, people [(id, x, corruption)], tracks
    [(id, state, time_since_update)]), or a bad camera input, or a parameter change."""
    kind = draw(st.sampled_from(["frame"] * 10 + ["camera_info", "depth", "param"]))
    if kind == "param":
        name = draw(st.sampled_from(sorted(SAFETY_PARAMS)))
        return ("param", name, draw(SAFETY_PARAMS[name]))
    if kind != "frame":
        return (kind, draw(st.sampled_from(["zero_k", "ahead", "good"] if kind == "camera_info" else
                                           ["nan", "small", "rgb8"])))
    people = [(draw(st.integers(1, 4)), draw(st.sampled_from([-5.0, -2.5, -1.5, -0.6, 1.0, 3.0])),
               draw(st.sampled_from(CORRUPTIONS))) for _ in range(draw(st.integers(0, 3)))]
    seen = sorted({i for i, _, _ in people})
    tracks = [(i, Track.CONFIRMED, 0) for i in seen if draw(st.integers(0, 5))]
    for i in draw(st.lists(st.integers(1, 5), max_size=3, unique=True)):   # coasting, deleted, never seen
        if i not in seen:
            tracks.append((i, draw(st.sampled_from([Track.CONFIRMED, Track.DELETED, Track.TENTATIVE])),
                           draw(st.integers(1, 3))))
    return ("frame", draw(st.sampled_from(STEPS)), people, tracks)


def _skeleton(id_, x, corruption) -> Skeleton:
    sk = person_msg(id_, x)
    if corruption == "nan_joints":
        for j in (5, 7, 9, 13, 15):
            sk.positions[j].x = math.nan
    elif corruption in ("inf", "huge", "far"):
        sk.positions[9].x = {"inf": math.inf, "huge": 1e160, "far": 100.0}[corruption]
    elif corruption == "model":
        sk.model = "panda"
    elif corruption == "short":
        sk.positions.pop()
    return sk


def _positions(sk: Skeleton) -> np.ndarray:
    return np.array([[p.x, p.y, p.z] for p in sk.positions])


@pytest.fixture(scope="module")
def rig(ros_context):
    import rclpy.node
    from rclpy.executors import SingleThreadedExecutor
    node = SafetyMonitorNode(context=ros_context, parameter_overrides=[
        Parameter("input_reliability", value="reliable"), Parameter("check_rate_hz", value=5.0),
        Parameter("status_deadline_s", value=1.0)])
    io = rclpy.node.Node("safety_fuzz_io", context=ros_context)
    statuses = []
    io.create_subscription(SafetyStatus, STATUS_TOPIC, statuses.append, QOS)
    types = ((ROBOT_TOPIC, Skeleton), (TRACKS_TOPIC, TrackArray), (HUMANS_TOPIC, SkeletonArray),
             (CAMERA_INFO_TOPIC, CameraInfo), (DEPTH_TOPIC, Image))
    pubs = {t: io.create_publisher(m, t, QOS) for t, m in types}
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(io)
    assert spin_until(ex, lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 30.0)
    defaults = {n: node.param(n) for n in SAFETY_PARAMS}
    yield node, ex, pubs, statuses, defaults
    ex.shutdown()
    node.destroy_node()
    io.destroy_node()


def _send(node, ex, pub, msg) -> None:
    n = node.inputs_handled
    pub.publish(msg)
    assert spin_until(ex, lambda: node.inputs_handled > n, 60.0)


class _Sent:
    """What the test sent, in the monitor's terms: people messages by stamp, person track
    arrays by stamp, and every valid skeleton of each id with its stamp."""

    def __init__(self):
        self.people: dict[int, list] = {}       # stamp ns -> [(id, positions [N, 3], valid)]
        self.tracks: dict[int, list] = {}       # stamp ns -> [(id, state)]
        self.valid: dict[int, list] = {}        # id -> [(stamp ns, positions [17, 3])]


def _check(node, status: SafetyStatus, sent: _Sent) -> None:
    """The invariant for a status about the frame of its header stamp."""
    if status.level not in (SafetyStatus.OK, SafetyStatus.WARNING):
        assert status.speed_scale == 0.0
        return
    stamp = status.header.stamp.sec * 10**9 + status.header.stamp.nanosec
    people = sent.people.get(stamp)
    assert people is not None, f"OK about a frame without people: {status.reason}"
    assert all(valid for _, _, valid in people), f"OK with a corrupt skeleton in the frame: {status.reason}"
    p = monitor_params({n: node.param(n) for n in SafetyMonitorNode.MONITOR_PARAMS})
    margin = status.min_distance_m - status.protective_separation_distance_m
    bounds = [margin_upper_bound_m(x, 0.0, ROBOT_M, 0.0, 0.0, p) for _, x, _ in people]
    held = node._tracks[max(node._tracks)] if node._tracks else None
    tracks = sent.tracks.get(max(node._tracks)) if held is not None else None
    assert tracks is not None or not p.require_tracks
    in_frame = {i for i, _, _ in people}
    for i, state in tracks or []:
        if state == Track.DELETED or i in in_frame:
            continue
        earlier = [(t, x) for t, x in sent.valid.get(i, []) if t <= stamp]
        assert earlier, f"OK while the tracker holds person {i}, never seen: {status.reason}"
        t, x = max(earlier, key=lambda e: e[0])
        bounds.append(margin_upper_bound_m(x, (stamp - t) * 1e-9, ROBOT_M, 0.0, 0.0, p))
    if bounds:
        assert margin <= min(bounds) + 1e-4, (margin, bounds, status.reason)
        assert margin > 0.0, status.reason


def _reset(node, ex, pubs, defaults) -> None:
    """A fresh monitor for each sequence: cleanup, defaults back, configure, activate; then
    wait until every test publisher has matched the new subscriptions (a message published
    before that is lost, as DDS does)."""
    node.trigger_deactivate()
    node.trigger_cleanup()
    assert spin_until(ex, lambda: all(p.get_subscription_count() == 0 for p in pubs.values()), 60.0)
    node.set_parameters([Parameter(n, value=v) for n, v in defaults.items()])
    node.trigger_configure()
    node.trigger_activate()
    assert node.lifecycle_state == "active"
    assert spin_until(ex, lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 60.0)


@CAMPAIGN
@given(steps=st.lists(frames(), min_size=3, max_size=12))
def test_the_node_says_ok_only_on_positive_evidence(rig, steps):
    node, ex, pubs, statuses, defaults = rig
    _reset(node, ex, pubs, defaults)
    sent, stamp = _Sent(), T0
    for step in steps:
        if step[0] == "param":
            result = node.set_parameters([Parameter(step[1], value=step[2])])[0]
            assert result.successful, result.reason
            continue
        if step[0] == "camera_info":
            info = K_to_camera_info(make_K(300, 300, 160, 120), 320, 240,
                                    make_header(stamp + (3600 * 10**9 if step[1] == "ahead" else 0), FRAME_ID))
            if step[1] == "zero_k":
                info.k = [0.0] * 9
            _send(node, ex, pubs[CAMERA_INFO_TOPIC], info)
            continue
        if step[0] == "depth":
            depth = {"nan": np.full((240, 320), np.nan, np.float32), "small": np.ones((10, 10), np.float32),
                     "rgb8": np.zeros((4, 4, 3), np.uint8)}[step[1]]
            enc = {"nan": "32FC1", "small": "32FC1", "rgb8": "rgb8"}[step[1]]
            _send(node, ex, pubs[DEPTH_TOPIC], numpy_to_image(depth, enc, make_header(stamp, FRAME_ID)))
            continue
        _, dt, people, tracks = step
        stamp += dt
        event(f"stamp step {dt / 1e9:g} s")
        _send(node, ex, pubs[ROBOT_TOPIC], robot_msg(stamp))
        _send(node, ex, pubs[TRACKS_TOPIC], TrackArray(header=make_header(stamp, FRAME_ID), tracks=[
            Track(track_id=i, class_name="person", state=s, time_since_update=u) for i, s, u in tracks]))
        sent.tracks[stamp] = [(i, s) for i, s, _ in tracks]
        msg = SkeletonArray(header=make_header(stamp, FRAME_ID))
        for i, x, corruption in people:
            sk = _skeleton(i, x, corruption)
            sk.header = make_header(stamp, FRAME_ID)
            msg.skeletons.append(sk)
            pos = _positions(sk)
            valid = corruption in ("none", "nan_joints")
            sent.people.setdefault(stamp, []).append((i, pos, valid))
            if valid:
                sent.valid.setdefault(i, []).append((stamp, pos))
        sent.people.setdefault(stamp, [])
        n = len(statuses)
        verdicts = node.verdicts
        _send(node, ex, pubs[HUMANS_TOPIC], msg)
        if node.verdicts > verdicts:    # accepted: the status about this frame (or a later timer one)
            assert spin_until(ex, lambda: len(statuses) > n, 30.0)
            for status in statuses[n:]:
                event(f"level {status.level}")
                _check(node, status, sent)
    # statuses keep coming whatever stopped, and nothing escaped a callback
    n = len(statuses)
    assert spin_until(ex, lambda: len(statuses) > n + 1, 30.0)
    assert not {"callback_error", "assess_error"} & set(node.counters), node.counters
    assert node.lifecycle_state == "active"
