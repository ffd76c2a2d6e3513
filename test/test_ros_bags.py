"""Bag replay and record with real rclpy and real DDS (no mocks, no rosbag2).

All nodes share one executor spinning in a background thread, in a private rclpy
context on a domain id derived from the pid, discovery limited to this host.
Timing assertions are deliberately loose.
"""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rosbags.rosbag2 import Reader, StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_types_from_msg, get_typestore  # noqa: E402

from hrc_perception.io.bag import COLOR_TOPIC, TYPESTORE, BagWriter, deserialize, full_topic  # noqa: E402
from hrc_perception.ros.bag_record import BagRecorder, register_msgdef  # noqa: E402
from hrc_perception.ros.bag_replay import BagError, BagReplayer  # noqa: E402

CELL_YAML = """\
camera: {width: 160, height: 120, fx: 154, fy: 154, cx: 80, cy: 60}
sequence: {episode_frames: 3, fps: 2.0}
"""
FRAMES = 3
DOMAIN_ID = 100 + os.getpid() % 100   # 0..232 are valid Fast DDS domains
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ros():
    """(context, executor): a private rclpy context and one shared executor spinning in a thread."""
    saved = os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    executor = SingleThreadedExecutor(context=ctx)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield ctx, executor
    finally:
        executor.shutdown()
        thread.join(5)
        rclpy.shutdown(context=ctx)
        if saved is None:
            os.environ.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)
        else:
            os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = saved


@pytest.fixture(scope="module")
def bag_dir(tmp_path_factory):
    """A 3-frame synthetic bag (9 topics under /cell, stamps 0.5 s apart, header stamp == record time)."""
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    d = tmp_path_factory.mktemp("ros_bags")
    cfg = d / "cell.yaml"
    cfg.write_text(CELL_YAML)
    writer = BagWriter(d / "bag", namespace="/cell")
    for frame in SynthRun(load_cell_config(cfg), seed=0).frames(FRAMES):
        writer.add(frame)
    writer.close()
    return d / "bag"


def _read(bag: Path):
    """(topics {name: type}, records [(topic, header stamp ns or None, raw bytes, record time ns)])."""
    records = []
    with Reader(bag) as r:
        topics = {c.topic: c.msgtype for c in r.connections}
        for conn, t_ns, raw in r.messages():
            msg = deserialize(raw, conn.msgtype)
            h = getattr(msg, "header", None)
            stamp = h.stamp.sec * 1_000_000_000 + h.stamp.nanosec if h is not None else None
            records.append((conn.topic, stamp, bytes(raw), t_ns))
    return topics, records


def _wait_for(cond, timeout=60.0, what="condition"):
    """Poll cond() until it holds; AssertionError after timeout s (generous: a wait that
    returns as soon as its condition holds costs nothing when it passes)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


_names = iter(range(1000))


def _replay_and_record(ros, bag, out, expect_topics, replay_kw=None, record_kw=None, read=None):
    """Replay ``bag`` (blocking) while a BagRecorder records ``expect_topics`` into ``out``.
    Returns the replay's wall time (s) and the recorded records (read by ``read``, default _read)."""
    ctx, executor = ros
    n = next(_names)
    rec = BagRecorder(out, context=ctx, node_name=f"rec{n}", discovery_period_s=0.05, **(record_kw or {}))
    executor.add_node(rec)
    rep = BagReplayer(bag, context=ctx, node_name=f"rep{n}", **(replay_kw or {}))
    executor.add_node(rep)
    try:
        _wait_for(lambda: set(expect_topics) <= set(rec.subscribed_topics), what="recorder subscriptions")
        counts = rep.subscription_counts()
        _wait_for(lambda: all(rep.subscription_counts()[t] >= 1 for t in expect_topics if t in counts),
                  what="replayer matched")
        assert rec.partial_path.is_dir() and not out.exists()      # still recording: only .partial
        t = time.monotonic()
        published = rep.play()
        elapsed = time.monotonic() - t
        if CLOCK in expect_topics:    # /clock ticks: as many as the replayer published
            _wait_for(lambda: rec.counts[CLOCK] >= rep.clocks_published > 0, what="recorder to catch up")
        else:
            _wait_for(lambda: sum(rec.counts[x] for x in expect_topics) >= published, what="recorder to catch up")
        assert rec.stop() == out
    finally:
        for node in (rep, rec):
            executor.remove_node(node)
            node.destroy_node()
    assert out.is_dir() and not rec.partial_path.exists()          # stopped: final bag, no .partial
    return elapsed, (read or _read)(out)


CLOCK = "/clock"


def test_round_trip_is_bit_identical(ros, bag_dir, tmp_path):
    topics, records = _read(bag_dir)
    assert len(topics) == 9 and len(records) == 9 * FRAMES
    _, (rec_topics, rec_records) = _replay_and_record(ros, bag_dir, tmp_path / "rec", topics,
                                                      replay_kw=dict(rate=0),
                                                      record_kw=dict(topic_namespace="/cell"))
    assert rec_topics == topics
    assert len(rec_records) == len(records)
    original = {(t, s): raw for t, s, raw, _ in records}
    recorded = {(t, s): raw for t, s, raw, _ in rec_records}
    assert recorded.keys() == original.keys()
    for key in original:
        assert recorded[key] == original[key], key


def test_rate_scales_replay_time(ros, bag_dir, tmp_path):
    topics, records = _read(bag_dir)
    times = [t for *_, t in records]
    span_s = (max(times) - min(times)) * 1e-9
    assert span_s == pytest.approx(1.0)
    elapsed, (_, rec_records) = _replay_and_record(ros, bag_dir, tmp_path / "rec", topics,
                                                   replay_kw=dict(rate=2.0), record_kw=dict(topic_namespace="/cell"))
    assert 0.45 * span_s <= elapsed < 0.95 * span_s          # ~0.5 s: half the bag span
    color = [(s, t) for topic, s, _, t in rec_records if topic == full_topic("/cell", COLOR_TOPIC)]
    assert [s for s, _ in color] == sorted(s for s, _ in color)   # frames arrive in order...
    assert (color[-1][1] - color[0][1]) * 1e-9 >= 0.3            # ...spread over time, not in a burst


def test_clock_is_published_with_bag_time(ros, bag_dir, tmp_path):
    _, records = _read(bag_dir)
    bag_times = {t for *_, t in records}
    _, (rec_topics, rec_records) = _replay_and_record(ros, bag_dir, tmp_path / "rec", [CLOCK],
                                                      replay_kw=dict(rate=4.0, clock=True),
                                                      record_kw=dict(topics=[CLOCK]))
    assert rec_topics == {CLOCK: "rosgraph_msgs/msg/Clock"}
    clock = []
    for _, _, raw, _ in rec_records:
        c = TYPESTORE.deserialize_cdr(raw, "rosgraph_msgs/msg/Clock").clock
        clock.append(c.sec * 1_000_000_000 + c.nanosec)
    assert clock == sorted(clock)                                 # never goes back within a pass
    assert bag_times <= set(clock)                                # every record's time...
    assert min(bag_times) <= min(clock) and max(clock) <= max(bag_times)   # ...and ticks in between
    assert len(clock) > len(bag_times)


def test_restamp_moves_stamps_consistently(ros, bag_dir, tmp_path):
    topics, records = _read(bag_dir)
    t_before = time.time_ns()
    _, (_, rec_records) = _replay_and_record(ros, bag_dir, tmp_path / "rec", topics,
                                             replay_kw=dict(rate=0, restamp=True),
                                             record_kw=dict(topic_namespace="/cell"))
    # messages of one topic keep their order: the k-th recorded is the k-th replayed
    def per_topic(recs):
        out = {}
        for topic, stamp, raw, _ in recs:
            out.setdefault(topic, []).append((stamp, raw))
        return out
    old, new = per_topic(records), per_topic(rec_records)
    assert old.keys() == new.keys()
    new_by_old: dict[int, set[int]] = {}
    for topic in old:
        assert len(new[topic]) == FRAMES
        for (s_old, _), (s_new, _) in zip(old[topic], new[topic]):
            new_by_old.setdefault(s_old, set()).add(s_new)
    assert len(new_by_old) == FRAMES
    assert all(len(v) == 1 for v in new_by_old.values())         # one new stamp per original frame
    pairs = sorted((o, v.pop()) for o, v in new_by_old.items())
    assert all(o != n for o, n in pairs)
    assert [n - pairs[0][1] for _, n in pairs] == [o - pairs[0][0] for o, _ in pairs]   # spacing kept
    assert abs(pairs[0][1] - t_before) < 60e9                      # near "now"
    for topic in old:   # only the stamp changed: CDR header (4 bytes), stamp (8 bytes), rest
        for (_, a), (_, b) in zip(old[topic], new[topic]):
            assert len(a) == len(b) and a[:4] == b[:4] and a[12:] == b[12:], topic


def _string_bag(path: Path, storage: StoragePlugin, n: int = 5) -> None:
    """n std_msgs/String records on /chatter, 10 ms apart."""
    String = TYPESTORE.types["std_msgs/msg/String"]
    with Writer(path, version=9, storage_plugin=storage) as w:
        conn = w.add_connection("/chatter", "std_msgs/msg/String", typestore=TYPESTORE)
        for i in range(n):
            w.write(conn, 10**9 + i * 10**7, TYPESTORE.serialize_cdr(String(data=f"msg {i}"), "std_msgs/msg/String"))


def test_sqlite3_bag_replays_and_loops(ros, tmp_path):
    bag = tmp_path / "sqlite_bag"
    _string_bag(bag, StoragePlugin.SQLITE3)
    topics, records = _read(bag)
    _, (rec_topics, rec_records) = _replay_and_record(ros, bag, tmp_path / "rec", topics,
                                                      replay_kw=dict(rate=0, topics=["chatter"]),
                                                      record_kw=dict(topics=["chatter"]))
    assert rec_topics == topics and [r[2] for r in rec_records] == [r[2] for r in records]

    ctx, executor = ros
    rep = BagReplayer(bag, context=ctx, rate=10.0, loop=True, node_name="looper")
    try:
        rep.start()
        _wait_for(lambda: rep.published >= 2 * len(records) + 1, what="a second pass")
        assert not rep.finished
        rep.stop()
        assert rep.finished and rep.passes >= 2 and rep.error is None
    finally:
        rep.destroy_node()


def _probe(ctx, executor, topic, msg_cls):
    node = rclpy.create_node(f"probe{next(_names)}", context=ctx)
    got = []
    node.create_subscription(msg_cls, topic, got.append, 10)
    executor.add_node(node)
    return node, got


def _check_bad_bag(ros, bad: Path, probe_topic: str, probe_cls, *must_mention: str):
    ctx, executor = ros
    probe, got = _probe(ctx, executor, probe_topic, probe_cls)
    try:
        with pytest.raises(BagError) as e:
            BagReplayer(bad, context=ctx, rate=0, node_name="bad_replayer")
        message = str(e.value)
        assert "\n" not in message and str(bad) in message
        for word in must_mention:
            assert word in message
        time.sleep(0.3)
        assert got == [] and probe.count_publishers(probe_topic) == 0
    finally:
        executor.remove_node(probe)
        probe.destroy_node()
    return message


def test_truncated_bag_is_a_clear_error(ros, bag_dir, tmp_path):
    from sensor_msgs.msg import Image
    bad = tmp_path / "truncated"
    shutil.copytree(bag_dir, bad)
    mcap = next(bad.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    _check_bad_bag(ros, bad, full_topic("/cell", COLOR_TOPIC), Image, "truncated or corrupt")


def test_unimportable_type_is_a_clear_error(ros, tmp_path):
    from std_msgs.msg import String
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg("float64 x\nstring name", "made_up_msgs/msg/Widget"))
    bad = tmp_path / "made_up"
    with Writer(bad, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        ok = w.add_connection("/text", "std_msgs/msg/String", typestore=store)
        widget = w.add_connection("/widget", "made_up_msgs/msg/Widget", typestore=store)
        for i in range(3):
            w.write(ok, 10**9 + i, store.serialize_cdr(store.types["std_msgs/msg/String"](data="hi"),
                                                         "std_msgs/msg/String"))
            w.write(widget, 10**9 + i, store.serialize_cdr(
                store.types["made_up_msgs/msg/Widget"](x=1.0, name="w"), "made_up_msgs/msg/Widget"))
    # the valid topic is not published either: the whole bag is refused first
    _check_bad_bag(ros, bad, "/text", String, "made_up_msgs/msg/Widget", "/widget")


def test_missing_topic_and_bad_rate_are_errors(ros, bag_dir):
    ctx, _ = ros
    with pytest.raises(BagError, match="not in the bag"):
        BagReplayer(bag_dir, context=ctx, topics=["/cell/nope"])
    with pytest.raises(ValueError):
        BagReplayer(bag_dir, context=ctx, rate=-1)


def test_recorder_partial_until_stopped(ros, tmp_path):
    ctx, executor = ros
    out = tmp_path / "timed"
    rec = BagRecorder(out, context=ctx, node_name="timed_recorder", topics=["/nothing"], duration_s=0.3)
    executor.add_node(rec)
    try:
        assert rec.partial_path == tmp_path / "timed.partial" and rec.partial_path.is_dir()
        assert not out.exists()
        assert rec.wait(60)                          # duration reached -> stopped by itself
    finally:
        executor.remove_node(rec)
        rec.destroy_node()
    assert out.is_dir() and not rec.partial_path.exists()
    assert [p.name for p in out.iterdir()] and _read(out) == ({}, [])
    with pytest.raises(BagError, match="exists already"):
        BagRecorder(out, context=ctx)

    crashed = tmp_path / "crashed"                   # never stopped: only the .partial is left
    rec = BagRecorder(crashed, context=ctx, node_name="crashed_recorder")
    rec.destroy_node()
    assert not crashed.exists() and (tmp_path / "crashed.partial").is_dir()


def test_msgdef_from_installed_msg_files():
    """Types the rosbags typestore lacks are registered from share/<pkg>/msg/*.msg, nested ones too."""
    empty = get_typestore(Stores.EMPTY)
    register_msgdef(empty, "sensor_msgs/msg/Image")
    assert "std_msgs/msg/Header" in empty.fielddefs and "builtin_interfaces/msg/Time" in empty.fielddefs
    assert empty.hash_rihs01("sensor_msgs/msg/Image") == TYPESTORE.hash_rihs01("sensor_msgs/msg/Image")
    with pytest.raises(Exception):
        register_msgdef(empty, "made_up_msgs/msg/Widget")


def _cli_env():
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID + 1), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_cli_replay_bad_bag_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"\x89MCAP0\r\n" + b"\0" * 100)
    r = subprocess.run([sys.executable, "-m", "hrc_perception.cli", "replay", str(bad), "--rate", "0"],
                       env=_cli_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and str(bad) in errors[0]


def test_cli_record_ctrl_c_finishes_bag(tmp_path):
    out = tmp_path / "cli_rec"
    p = subprocess.Popen([sys.executable, "-m", "hrc_perception.cli", "record", "--out", str(out),
                          "--namespace", "/cell"], env=_cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    try:
        _wait_for(lambda: (tmp_path / "cli_rec.partial").is_dir() or p.poll() is not None, what="recorder start")
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        log, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, log
    assert out.is_dir() and not (tmp_path / "cli_rec.partial").exists(), log
    assert _read(out) == ({}, [])


@pytest.fixture(scope="module")
def scenario_dir(tmp_path_factory):
    """A 3-frame scenario bag of the small cell: what the synthetic rgbd_capture publishes."""
    from hrc_perception.ros.scenario_bag import render_scenario_bag
    d = tmp_path_factory.mktemp("scenario")
    (d / "cell.yaml").write_text(CELL_YAML)
    return render_scenario_bag(d / "bag", str(d / "cell.yaml"), seed=0, duration_s=FRAMES / 2.0,   # 2 fps
                               log=lambda *_: None), d


def test_scenario_bag_holds_what_rgbd_capture_publishes(scenario_dir):
    """Every topic of the synthetic rgbd_capture, one message per frame, each record at its
    header stamp (a replay then paces at the cell's frame rate); the camera frames read back
    equal to the renderer's; the ground truth deserializes with the frame's people; a second
    render onto the same path is refused."""
    from rclpy.serialization import deserialize_message

    from hrc_perception.io.bag import read_bag_frames
    from hrc_perception.msg import SkeletonArray
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    from hrc_perception.ros.scenario_bag import render_scenario_bag
    bag, d = scenario_dir
    with Reader(bag) as r:
        topics = {c.topic: c.msgcount for c in r.connections}
        humans = [deserialize_message(bytes(raw), SkeletonArray) for c, _, raw in r.messages()
                  if c.topic == "/cell/ground_truth/humans/skeletons"]
    wanted = {"camera/color/image_raw", "camera/depth/image_raw", "camera/color/camera_info", "joint_states",
              "ground_truth/robot/skeleton", "ground_truth/humans/skeletons", "ground_truth/objects/poses",
              "ground_truth/robot/base_pose", "ground_truth/segmentation/instances"}
    assert topics == {f"/cell/{t}": FRAMES for t in wanted}
    for _, stamp, _, t_ns in _read_stamped(bag):
        assert stamp == t_ns
    truth = list(SynthRun(load_cell_config(d / "cell.yaml"), seed=0).frames(FRAMES))
    frames = list(read_bag_frames(bag))
    assert [f.stamp_ns for f in frames] == [f.stamp_ns for f in truth]
    assert all(np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth_mm, b.depth_mm) for a, b in zip(frames, truth))
    assert [len(h.skeletons) for h in humans] == [len(f.humans) for f in truth]
    with pytest.raises(BagError, match="exists already"):
        render_scenario_bag(bag, str(d / "cell.yaml"), duration_s=0.5)


def _read_stamped(bag: Path):
    """(topic, header stamp ns, raw, record time ns) of every record, with rclpy's types."""
    from rclpy.serialization import deserialize_message

    from hrc_perception.ros.bag_replay import resolve_message_type
    out = []
    with Reader(bag) as r:
        for conn, t_ns, raw in r.messages():
            msg = deserialize_message(bytes(raw), resolve_message_type(conn.msgtype))
            out.append((conn.topic, msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec, bytes(raw), t_ns))
    return out


def test_a_restamped_scenario_replay_keeps_camera_and_truth_together(ros, scenario_dir, tmp_path):
    """Replayed with restamp: every topic of a frame, its ground truth included, gets the
    same new stamp, near now, the frames' spacing kept."""
    bag, _ = scenario_dir
    topics = {t for t, *_ in _read_stamped(bag)}
    _, new = _replay_and_record(ros, bag, tmp_path / "rec", topics, replay_kw=dict(rate=0, restamp=True),
                                record_kw=dict(topic_namespace="/cell"), read=_read_stamped)
    old = _read_stamped(bag)
    per_topic_old, per_topic_new = {}, {}
    for recs, out in ((old, per_topic_old), (new, per_topic_new)):
        for topic, stamp, *_ in recs:
            out.setdefault(topic, []).append(stamp)
    assert per_topic_new.keys() == per_topic_old.keys()
    new_by_old: dict[int, set[int]] = {}
    for topic, stamps in per_topic_old.items():
        assert len(per_topic_new[topic]) == FRAMES
        for s_old, s_new in zip(stamps, per_topic_new[topic]):
            new_by_old.setdefault(s_old, set()).add(s_new)
    assert len(new_by_old) == FRAMES and all(len(v) == 1 for v in new_by_old.values())
    pairs = sorted((o, v.pop()) for o, v in new_by_old.items())
    assert [n - pairs[0][1] for _, n in pairs] == [o - pairs[0][0] for o, _ in pairs]
    assert abs(pairs[0][1] - time.time_ns()) < 120e9
