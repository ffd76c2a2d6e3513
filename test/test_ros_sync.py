"""hrc_perception.ros.sync: the approximate-time policy, make_synchronizer on real rclpy,
and agreement with message_filters where it is installed."""
import os
import random
import time
import uuid

import pytest
from geometry_msgs.msg import PointStamped
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String

from hrc_perception.ros.convert import ns_to_stamp, stamp_to_ns
from hrc_perception.ros.sync import ApproximateTimeSync, make_synchronizer

MS = 1_000_000
FRAME = 33 * MS


class Recorder:
    """Collects the stamps (ns) of every emitted set."""

    def __init__(self):
        self.sets = []

    def __call__(self, *msgs):
        self.sets.append(tuple(m.stamp_ns for m in msgs))


class Msg:
    """A stand-in payload that knows its stream and stamp."""

    def __init__(self, stream, stamp_ns):
        self.stream, self.stamp_ns = stream, stamp_ns

    def __repr__(self):
        return f"Msg({self.stream}, {self.stamp_ns / MS:g} ms)"


def feed(sync, events):
    """events: [(stream, stamp_ns)] in arrival order."""
    for k, t in events:
        sync.add(k, Msg(k, t), t)


def interleave(streams):
    """Arrival order: by stamp, stream index on ties."""
    return sorted(((k, t) for k, ts in enumerate(streams) for t in ts), key=lambda e: (e[1], e[0]))


def make(n=2, queue_size=10, slop=0.010):
    rec = Recorder()
    return ApproximateTimeSync(n, queue_size, slop, rec), rec


# ------------------------------------------------------------------ the policy

def test_exact_pairs_are_emitted_at_once():
    sync, rec = make()
    for i in range(5):
        feed(sync, [(0, i * FRAME)])
        assert len(rec.sets) == i
        feed(sync, [(1, i * FRAME)])
        assert rec.sets[-1] == (i * FRAME, i * FRAME)
    assert sync.emitted == 5 and sync.pending() == [0, 0]
    assert (sync.dropped_unmatched, sync.dropped_overflow, sync.dropped_out_of_order) == (0, 0, 0)


def test_jittered_pairs_within_slop():
    jitter = [3, -4, 2, 5, -1, 0, -3, 4]
    color = [i * FRAME for i in range(len(jitter))]
    depth = [i * FRAME + j * MS for i, j in enumerate(jitter)]
    sync, rec = make()
    feed(sync, interleave([color, depth]))
    # every pair but possibly the last: a set is emitted once no later message can improve it
    assert rec.sets == list(zip(color, depth))[: len(rec.sets)]
    assert len(rec.sets) >= len(jitter) - 1
    feed(sync, [(0, len(jitter) * FRAME), (1, len(jitter) * FRAME)])
    assert rec.sets == list(zip(color, depth)) + [(len(jitter) * FRAME,) * 2]
    assert sync.dropped_unmatched == 0


def test_jitter_beyond_slop_is_not_paired():
    sync, rec = make(slop=0.002)
    feed(sync, [(0, 0), (1, 5 * MS), (0, FRAME), (1, FRAME + 1 * MS), (0, 2 * FRAME), (1, 2 * FRAME)])
    assert rec.sets == [(FRAME, FRAME + 1 * MS), (2 * FRAME, 2 * FRAME)]


def test_slop_is_inclusive():
    sync, rec = make(slop=0.004)
    feed(sync, [(0, 0), (1, 4 * MS), (0, FRAME), (1, FRAME)])
    assert rec.sets == [(0, 4 * MS), (FRAME, FRAME)]


def test_missing_message_on_one_stream():
    color = [i * FRAME for i in range(6)]
    depth = [i * FRAME + 2 * MS for i in range(6) if i != 2]     # depth frame 2 lost
    sync, rec = make()
    feed(sync, interleave([color, depth]) + [(0, 10 * FRAME), (1, 10 * FRAME)])
    assert rec.sets == [(c, c + 2 * MS) for c in color if c != 2 * FRAME] + [(10 * FRAME,) * 2]
    assert sync.dropped_unmatched == 1                            # colour frame 2


def test_best_match_not_first_match():
    """A 90 Hz stream against a 30 Hz one: the closest message wins, not the first within slop."""
    slow = [i * 3 * 11 * MS for i in range(5)]
    fast = [i * 11 * MS + 4 * MS for i in range(15)]
    sync, rec = make(slop=0.020)
    feed(sync, interleave([slow, fast]) + [(0, 1000 * MS), (1, 1000 * MS)])
    expected = [(s, min(fast, key=lambda f: abs(f - s))) for s in slow]
    assert rec.sets[:-1] == expected


def test_out_of_order_is_dropped_and_counted():
    sync, rec = make()
    feed(sync, [(0, 0), (0, 2 * FRAME), (0, FRAME), (0, 2 * FRAME)])   # late, then duplicate
    assert sync.dropped_out_of_order == 2 and sync.pending() == [2, 0]
    feed(sync, [(1, 0), (1, FRAME), (1, 2 * FRAME)])
    assert rec.sets == [(0, 0), (2 * FRAME, 2 * FRAME)]
    feed(sync, [(1, FRAME)])
    assert sync.dropped_out_of_order == 3 and len(rec.sets) == 2


def test_queue_overflow_drops_the_oldest():
    sync, rec = make(queue_size=3)
    feed(sync, [(0, i * FRAME) for i in range(5)])
    assert sync.pending() == [3, 0] and sync.dropped_overflow == 2
    feed(sync, [(1, 0), (1, FRAME)])                   # their partners were dropped
    assert rec.sets == [] and sync.dropped_unmatched >= 2
    feed(sync, [(1, 2 * FRAME)])
    assert rec.sets == [(2 * FRAME, 2 * FRAME)]


def test_queue_overflow_with_a_candidate_pending():
    sync, rec = make(queue_size=2, slop=1.0)
    feed(sync, [(0, 0), (1, 5 * MS)])                  # candidate (0, 5) waits for stream 0
    feed(sync, [(1, 40 * MS), (1, 80 * MS)])           # stream 1 overflows: 5 ms dropped
    assert sync.dropped_overflow == 1
    feed(sync, [(0, 78 * MS), (0, 200 * MS), (1, 200 * MS)])
    assert rec.sets == [(78 * MS, 80 * MS), (200 * MS, 200 * MS)]


def test_three_streams():
    color = [i * FRAME for i in range(6)]
    depth = [i * FRAME + 3 * MS for i in range(6)]
    info = [i * FRAME for i in range(6) if i != 4]
    sync, rec = make(n=3)
    feed(sync, interleave([color, depth, info]) + [(k, 10 * FRAME) for k in range(3)])
    assert rec.sets == [(c, c + 3 * MS, c) for c in color if c != 4 * FRAME] + [(10 * FRAME,) * 3]


def test_single_stream_passes_through():
    sync, rec = make(n=1)
    feed(sync, [(0, 1), (0, 5), (0, 9)])
    assert rec.sets == [(1,), (5,), (9,)]


def test_invalid_arguments():
    with pytest.raises(ValueError, match="num_streams"):
        ApproximateTimeSync(0, 10, 0.01, print)
    with pytest.raises(ValueError, match="queue_size"):
        ApproximateTimeSync(2, 0, 0.01, print)
    with pytest.raises(ValueError, match="slop"):
        ApproximateTimeSync(2, 10, -0.1, print)
    sync, _ = make()
    with pytest.raises(IndexError, match="stream_index 2"):
        sync.add(2, None, 0)


# --------------------------------------------- properties, against a plain reference

def reference_sets(streams, slop_ns):
    """The policy computed offline, with every stamp known: plain and slow.

    From the first unused message of each stream, slide the window (advance the
    earliest) while the pivot (latest first message) is not the earliest, keep the
    smallest window; windows larger than slop at the start are skipped.
    """
    n = len(streams)
    heads, out = [0] * n, []

    def window(pos):
        ts = [streams[k][pos[k]] for k in range(n)]
        first = min(range(n), key=lambda k: (ts[k], k))
        last = max(range(n), key=lambda k: (ts[k], k))
        return first, last, ts[last] - ts[first]

    while all(heads[k] < len(streams[k]) for k in range(n)):
        first, pivot, size = window(heads)
        if size > slop_ns:
            heads[first] += 1
            continue
        best, best_size, pos = list(heads), size, list(heads)
        while True:
            first, _, _ = window(pos)
            if first == pivot:
                break
            pos[first] += 1
            if pos[first] == len(streams[first]):
                return out
            _, _, size = window(pos)
            if size < best_size:
                best, best_size = list(pos), size
        out.append(tuple(streams[k][best[k]] for k in range(n)))
        heads = [b + 1 for b in best]
    return out


def random_streams(rng, n, frames):
    streams = []
    for k in range(n):
        period = rng.choice([33, 33, 11, 50, 100]) * MS
        offset, jitter = rng.randrange(0, 30 * MS), rng.choice([0, 2 * MS, 8 * MS, 20 * MS])
        ts, t = [], offset
        while t < frames * FRAME:
            if rng.random() > 0.1:                                  # 10 % lost
                ts.append(t + rng.randrange(0, jitter + 1))
            t += period
        ts = sorted(set(ts))
        ts.append(SENTINEL)                                         # a common sentinel flushes the end
        streams.append(ts)
    return streams


SENTINEL = 100_000 * MS


def test_matches_reference_for_any_arrival_order():
    rng = random.Random(0)
    for trial in range(150):
        n = rng.choice([2, 2, 3, 4])
        streams = random_streams(rng, n, frames=rng.randrange(2, 25))
        slop = rng.choice([0.005, 0.015, 0.050, 10.0])
        expected = reference_sets(streams, round(slop * 1e9))
        # arrival: each stream in order, streams delayed differently (network, processing)
        delays = [rng.randrange(0, 200 * MS) for _ in range(n)]
        events = sorted(((k, t) for k, ts in enumerate(streams) for t in ts),
                        key=lambda e: (e[1] + delays[e[0]], rng.random()))
        sync, rec = make(n=n, queue_size=10_000, slop=slop)
        feed(sync, events)
        # the reference stops at the sentinel set (no window after it); the policy emits it
        assert rec.sets == expected + [(SENTINEL,) * n], (trial, streams, slop)
        used = [(k, t) for s in rec.sets for k, t in enumerate(s)]
        assert len(used) == len(set(used))                         # no message twice
        for a, b in zip(rec.sets, rec.sets[1:]):                   # sets do not cross
            assert all(x < y for x, y in zip(a, b))
        assert all(max(s) - min(s) <= round(slop * 1e9) for s in rec.sets)


# ----------------------------------------------------------- make_synchronizer

@pytest.fixture
def ros_context():
    rclpy = pytest.importorskip("rclpy")
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    ctx.try_shutdown()


def _spin_until(executor, predicate, timeout_s=5.0):
    end = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.02)


def test_make_synchronizer_with_rclpy(ros_context):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    ns = f"/test_sync_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    sub_node = Node("sync_sub", context=ros_context)
    pub_node = Node("sync_pub", context=ros_context)
    got = []
    handle = make_synchronizer(sub_node, [(f"{ns}/image", Image), (f"{ns}/info", CameraInfo)],
                               queue_size=10, slop=0.01, callback=lambda *m: got.append(m), qos=10,
                               backend="hrc_perception")
    assert handle.backend == "hrc_perception" and len(handle.subscriptions) == 2
    pub_image = pub_node.create_publisher(Image, f"{ns}/image", 10)
    pub_info = pub_node.create_publisher(CameraInfo, f"{ns}/info", 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(sub_node)
    executor.add_node(pub_node)
    _spin_until(executor, lambda: pub_image.get_subscription_count() and pub_info.get_subscription_count())
    stamps = [1_000 * MS + i * FRAME for i in range(4)]
    for i, t in enumerate(stamps):
        pub_image.publish(Image(header=Header(stamp=ns_to_stamp(t), frame_id="cam")))
        pub_info.publish(CameraInfo(header=Header(stamp=ns_to_stamp(t + 2 * MS), frame_id="cam")))
        executor.spin_once(timeout_sec=0.0)
    _spin_until(executor, lambda: len(got) >= 3)
    assert [(stamp_to_ns(a.header.stamp), stamp_to_ns(b.header.stamp)) for a, b in got][:3] == \
        [(t, t + 2 * MS) for t in stamps[:3]]
    assert isinstance(got[0][0], Image) and isinstance(got[0][1], CameraInfo)
    pub_image.publish(Image(header=Header(stamp=ns_to_stamp(stamps[0]), frame_id="cam")))  # stale
    _spin_until(executor, lambda: handle.synchronizer.dropped_out_of_order == 1)
    assert handle.synchronizer.dropped_out_of_order == 1
    handle.destroy(sub_node)
    executor.shutdown()
    sub_node.destroy_node()
    pub_node.destroy_node()


def test_make_synchronizer_auto_and_errors(ros_context):
    from rclpy.node import Node

    node = Node("sync_errors", context=ros_context)
    try:
        handle = make_synchronizer(node, [("a", Image), ("b", Image)], 5, 0.01, lambda *m: None)
        try:
            import message_filters  # noqa: F401
            assert handle.backend == "message_filters"
        except ImportError:
            assert handle.backend == "hrc_perception"
        handle.destroy(node)
        with pytest.raises(ValueError, match="String has no header"):
            make_synchronizer(node, [("a", Image), ("s", String)], 5, 0.01, lambda *m: None)
        with pytest.raises(ValueError, match="backend"):
            make_synchronizer(node, [("a", Image)], 5, 0.01, lambda *m: None, backend="cv")
    finally:
        node.destroy_node()


# ---------------------------------- agreement with message_filters (system ROS only)

AGREEMENT_CASES = {
    "exact pairs": [[i * FRAME for i in range(8)]] * 2,
    "jittered pairs": [[i * FRAME for i in range(8)],
                       [i * FRAME + j * MS for i, j in enumerate([3, -4, 2, 5, -1, 0, -3, 4])]],
    "missing message": [[i * FRAME for i in range(8)],
                        [i * FRAME + 2 * MS for i in range(8) if i not in (2, 5)]],
    "three streams": [[i * FRAME for i in range(8)],
                      [i * FRAME + 3 * MS for i in range(8) if i != 4],
                      [i * FRAME - 1 * MS for i in range(8) if i != 6]],
}


@pytest.mark.parametrize("case", list(AGREEMENT_CASES))
def test_agrees_with_message_filters(case):
    message_filters = pytest.importorskip("message_filters")
    t0 = 1_000 * MS                                  # rclpy Time refuses negative stamps
    streams = [[t0 + t for t in s] + [t0 + 100 * FRAME] for s in AGREEMENT_CASES[case]]  # + a sentinel
    events = interleave(streams)
    slop = 0.010

    def stamped(t):
        return PointStamped(header=Header(stamp=ns_to_stamp(t)))

    theirs = []
    inputs = [message_filters.SimpleFilter() for _ in streams]
    mf_sync = message_filters.ApproximateTimeSynchronizer(inputs, 10, slop)
    mf_sync.registerCallback(lambda *m: theirs.append(tuple(stamp_to_ns(x.header.stamp) for x in m)))
    ours = []
    sync = ApproximateTimeSync(len(streams), 10, slop,
                               lambda *m: ours.append(tuple(stamp_to_ns(x.header.stamp) for x in m)))
    for k, t in events:
        inputs[k].signalMessage(stamped(t))
        sync.add(k, stamped(t), t)
    assert ours == theirs
    assert ours[-1] == (t0 + 100 * FRAME,) * len(streams)
    assert len(ours) >= 7
