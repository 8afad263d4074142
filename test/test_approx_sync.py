"""Tests of sosmaskfuse_core.approx_sync: hand-built streams, reference model, message_filters."""

import importlib.util
import random
import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import List, Optional, Tuple

import pytest

from sosmaskfuse_core.formats.approx_sync import ApproximateTimeSync, slop_to_ns, stamp_to_ns

MS = 1_000_000  # nanoseconds
HAVE_MESSAGE_FILTERS = importlib.util.find_spec("message_filters") is not None


def feed(sync: ApproximateTimeSync, events) -> List[Tuple]:
    """Push ``(input, stamp_ns)`` events (each message is its own event); return emitted sets."""
    emitted = []
    for index, stamp in events:
        matched = sync.add(index, (index, stamp), stamp)
        if matched is not None:
            emitted.append(matched)
    return emitted


def stamps_of(emitted):
    return [tuple(stamp for _, stamp in group) for group in emitted]


# ----------------------------------------------------------------------------- hand-built streams


def test_lockstep_pairs_are_emitted_on_the_second_arrival():
    sync = ApproximateTimeSync(2, queue_size=1, slop=0.1)
    for k in range(5):
        assert sync.add(0, ("ir", k), k * 100 * MS) is None
        assert sync.add(1, ("vis", k), k * 100 * MS) == (("ir", k), ("vis", k))
    assert sync.queued_stamps(0) == sync.queued_stamps(1) == []


@pytest.mark.parametrize("delta_ms, pairs", [(0, True), (99, True), (100, False), (101, False)])
def test_spread_must_be_strictly_below_slop(delta_ms, pairs):
    sync = ApproximateTimeSync(2, queue_size=5, slop=0.1)
    emitted = feed(sync, [(0, 1000 * MS), (1, (1000 + delta_ms) * MS)])
    assert stamps_of(emitted) == ([(1000 * MS, (1000 + delta_ms) * MS)] if pairs else [])


def test_slop_is_truncated_to_nanoseconds_like_rclpy_duration():
    # 0.00207 * 1e9 == 2069999.9999999998, which rclpy stores as 2069999 ns.
    assert slop_to_ns(0.00207) == 2_069_999
    sync = ApproximateTimeSync(2, queue_size=5, slop=0.00207)
    assert feed(sync, [(0, 0), (1, 2_069_999)]) == []
    assert stamps_of(feed(sync, [(0, 10 * MS), (1, 10 * MS + 2_069_998)])) == [
        (10 * MS, 10 * MS + 2_069_998)
    ]


def test_jitter_within_slop_pairs_nearest():
    sync = ApproximateTimeSync(2, queue_size=10, slop=0.02)
    ir = [0, 33, 67, 100]
    vis = [2, 31, 70, 98]
    events = [event for a, b in zip(ir, vis) for event in ((0, a * MS), (1, b * MS))]
    assert stamps_of(feed(sync, events)) == [(a * MS, b * MS) for a, b in zip(ir, vis)]


def test_nearest_candidate_wins_and_older_ones_stay_queued():
    sync = ApproximateTimeSync(2, queue_size=10, slop=0.1)
    emitted = feed(sync, [(1, 0), (1, 40 * MS), (0, 50 * MS)])
    assert stamps_of(emitted) == [(50 * MS, 40 * MS)]
    assert sync.queued_stamps(1) == [0]  # not pruned by the later match
    assert stamps_of(feed(sync, [(0, 10 * MS)])) == [(10 * MS, 0)]


@pytest.mark.parametrize("first, second", [(60, 40), (40, 60)])
def test_equal_distances_go_to_the_stamp_queued_first(first, second):
    sync = ApproximateTimeSync(2, queue_size=10, slop=0.1)
    emitted = feed(sync, [(1, first * MS), (1, second * MS), (0, 50 * MS)])
    assert stamps_of(emitted) == [(50 * MS, first * MS)]


def test_one_camera_twice_as_fast():
    sync = ApproximateTimeSync(2, queue_size=4, slop=0.01)
    events = []
    for k in range(6):
        events.append((0, k * 50 * MS))  # 20 Hz thermal
        if k % 2 == 1:
            events.append((1, (k * 50 - 48) * MS))  # 10 Hz visible, 2 ms after every other frame
    emitted = feed(sync, events)
    assert stamps_of(emitted) == [(0, 2 * MS), (100 * MS, 102 * MS), (200 * MS, 202 * MS)]
    assert sync.queued_stamps(0) == [50 * MS, 150 * MS, 250 * MS]  # wait for eviction


def test_dropped_frame_leaves_its_partner_unpaired():
    sync = ApproximateTimeSync(2, queue_size=3, slop=0.01)
    events = [
        (0, 0),
        (1, 0),
        (0, 100 * MS),
        (0, 200 * MS),
        (1, 200 * MS),
        (0, 300 * MS),
        (0, 400 * MS),
        (0, 500 * MS),
        (1, 500 * MS),
    ]
    assert stamps_of(feed(sync, events)) == [(0, 0), (200 * MS, 200 * MS), (500 * MS, 500 * MS)]
    assert sync.queued_stamps(0) == [300 * MS, 400 * MS]  # 100 ms was evicted by queue_size=3


def test_out_of_order_arrival_still_pairs():
    sync = ApproximateTimeSync(2, queue_size=5, slop=0.01)
    events = [(0, 200 * MS), (0, 100 * MS), (1, 100 * MS), (1, 200 * MS)]
    assert stamps_of(feed(sync, events)) == [(100 * MS, 100 * MS), (200 * MS, 200 * MS)]


def test_duplicate_stamp_replaces_the_queued_message():
    sync = ApproximateTimeSync(2, queue_size=5, slop=0.01)
    assert sync.add(0, "first", 100 * MS) is None
    assert sync.add(0, "second", 100 * MS) is None
    assert sync.queued_stamps(0) == [100 * MS]
    assert sync.add(1, "partner", 100 * MS) == ("second", "partner")


def test_queue_overflow_drops_the_oldest_stamp_even_if_it_just_arrived():
    sync = ApproximateTimeSync(2, queue_size=2, slop=0.01)
    feed(sync, [(0, 100 * MS), (0, 200 * MS), (0, 300 * MS)])
    assert sync.queued_stamps(0) == [200 * MS, 300 * MS]
    assert feed(sync, [(1, 100 * MS)]) == []  # its partner was evicted
    assert sync.queued_stamps(1) == [100 * MS]
    # a late thermal frame older than everything queued is evicted at once:
    assert feed(sync, [(0, 100 * MS)]) == []
    assert sync.queued_stamps(0) == [200 * MS, 300 * MS]


def test_three_inputs_take_the_first_valid_combination_not_the_tightest():
    sync = ApproximateTimeSync(3, queue_size=5, slop=0.1)
    feed(sync, [(0, 50 * MS), (0, 170 * MS), (1, 180 * MS), (1, 10 * MS)])
    # candidates for t=100: input 0 -> [50, 170], input 1 -> [180, 10] (by distance)
    # (50, 180) spreads 130 ms; (50, 10) spreads 90 ms and wins over the tighter (170, 180).
    assert stamps_of(feed(sync, [(2, 100 * MS)])) == [(50 * MS, 10 * MS, 100 * MS)]
    assert sync.queued_stamps(0) == [170 * MS] and sync.queued_stamps(1) == [180 * MS]


def test_single_input_emits_immediately_and_zero_slop_never_pairs():
    assert feed(ApproximateTimeSync(1, queue_size=3, slop=0.05), [(0, 5), (0, 7)]) == [
        ((0, 5),),
        ((0, 7),),
    ]
    sync = ApproximateTimeSync(2, queue_size=3, slop=0.0)
    assert feed(sync, [(0, 5), (1, 5), (0, 9), (1, 9)]) == []


def test_callback_gets_the_set_in_input_order_and_may_feed_more():
    received = []

    def on_set(ir, vis):
        received.append((ir, vis))
        if ir == "a":
            sync.add(0, "c", 200 * MS)  # re-entrant: the lock is an RLock

    sync = ApproximateTimeSync(2, queue_size=5, slop=0.01, callback=on_set)
    sync.add(1, "b", 100 * MS)
    sync.add(1, "d", 200 * MS)
    assert sync.add(0, "a", 100 * MS) == ("a", "b")
    assert received == [("a", "b"), ("c", "d")]


def _stamped(sec, nanosec):
    stamp = SimpleNamespace(sec=sec, nanosec=nanosec)
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp))


def test_add_msg_reads_the_header_stamp_and_clear_empties():
    sync = ApproximateTimeSync(2, queue_size=5, slop=0.01)
    a, b = _stamped(10, 5), _stamped(10, 6)
    assert sync.add_msg(0, a) is None
    assert sync.add_msg(1, b) == (a, b)
    sync.add_msg(0, _stamped(11, 0))
    sync.clear()
    assert sync.queued_stamps(0) == []


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(num_inputs=0), "num_inputs must be an int >= 1; got 0"),
        (dict(queue_size=0), "queue_size must be an int >= 1; got 0"),
        (dict(queue_size=2.5), "queue_size must be an int >= 1; got 2.5"),
        (dict(slop=-0.1), "slop must be a finite number of seconds >= 0; got -0.1"),
        (dict(slop=float("nan")), "slop must be a finite number"),
        (dict(slop="0.1"), "slop must be a finite number"),
    ],
)
def test_constructor_validation(kwargs, text):
    with pytest.raises(ValueError, match=text):
        ApproximateTimeSync(**kwargs)


def test_add_validation():
    sync = ApproximateTimeSync(2)
    with pytest.raises(IndexError, match="input index 2 out of range 0..1"):
        sync.add(2, "m", 0)
    with pytest.raises(ValueError, match="stamp must not be negative; got -1 ns"):
        sync.add(0, "m", -1)
    with pytest.raises(TypeError):
        sync.add(0, "m", 1.5)


def test_stamp_to_ns_accepts_every_stamp_type():
    assert stamp_to_ns(SimpleNamespace(sec=3, nanosec=7)) == 3_000_000_007
    if importlib.util.find_spec("builtin_interfaces") is not None:
        from builtin_interfaces.msg import Time

        stamp = Time(sec=1_700_000_000, nanosec=999_999_999)
        assert stamp_to_ns(stamp) == 1_700_000_000_999_999_999
    if importlib.util.find_spec("rclpy") is not None:
        from rclpy.time import Time as RclpyTime

        assert stamp_to_ns(RclpyTime(nanoseconds=42)) == 42
    if importlib.util.find_spec("rosbags") is not None:
        from rosbags.typesys import Stores, get_typestore

        time_type = get_typestore(Stores.ROS2_JAZZY).types["builtin_interfaces/msg/Time"]
        assert stamp_to_ns(time_type(sec=2, nanosec=1)) == 2_000_000_001


def test_concurrent_adds_never_emit_a_message_twice():
    sync = ApproximateTimeSync(3, queue_size=8, slop=0.015)
    emitted = []
    sync_lock = threading.Lock()

    def producer(index):
        rng = random.Random(index)
        for k in range(300):
            stamp = k * 33 * MS + rng.randrange(-5 * MS, 5 * MS) + 10 * MS
            matched = sync.add(index, (index, k, stamp), stamp)
            if matched:
                with sync_lock:
                    emitted.append(matched)

    threads = [threading.Thread(target=producer, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seen = [msg for group in emitted for msg in group]
    assert len(seen) == len(set(seen))
    assert emitted, "jittered 30 Hz streams must produce some sets"
    for group in emitted:
        assert [m[0] for m in group] == [0, 1, 2]
        stamps = [m[2] for m in group]
        assert max(stamps) - min(stamps) < sync.slop_ns


# ----------------------------------------------------------------------------- random streams


@dataclass(frozen=True)
class StreamCase:
    """One replayable scenario: parameters and the ``(input, stamp_ns)`` arrivals in order."""

    num_inputs: int
    queue_size: int
    slop: float
    events: Tuple[Tuple[int, int], ...]


def random_stream(rng: random.Random) -> StreamCase:
    """Camera-like streams with jitter, drops, duplicates, reordering and exact-slop gaps."""
    num_inputs = rng.choice([1, 2, 2, 2, 2, 3, 3, 4])
    queue_size = rng.choice([1, 2, 3, 4, 5, 8, 10])
    slop, quantum = rng.choice(
        [
            (0.0, MS),
            (0.005, MS),
            (0.01, MS),
            (0.02, 5 * MS),
            (0.05, 5 * MS),
            (0.1, 10 * MS),
            (0.015, MS),
            (0.00207, 10_000),
            (0.00397, 10_000),
            (0.03, 1),
        ]
    )
    base = rng.randrange(0, 2_000_000_000) * 1_000_000_000
    arrivals = []
    for index in range(num_inputs):
        period = rng.choice([10, 20, 33, 40, 50]) * MS
        jitter = rng.choice([0, 1, 5, 20]) * MS
        stamp = base + rng.randrange(0, 50 * MS)
        for _ in range(rng.randrange(3, 30)):
            stamp += period
            if rng.random() < 0.15:
                continue  # dropped frame
            noisy = max(0, stamp + (rng.randrange(-jitter, jitter + 1) if jitter else 0))
            noisy -= noisy % quantum
            latency = rng.randrange(0, 80 * MS)
            arrivals.append((noisy + latency, index, noisy))
            if rng.random() < 0.08:  # duplicate stamp, maybe later
                arrivals.append((noisy + latency + rng.randrange(0, 60 * MS), index, noisy))
    arrivals.sort()
    events = [(index, stamp) for _, index, stamp in arrivals]
    for _ in range(rng.randrange(0, 4)):  # a few extra out-of-order swaps
        if len(events) > 1:
            k = rng.randrange(len(events) - 1)
            events[k], events[k + 1] = events[k + 1], events[k]
    return StreamCase(num_inputs, queue_size, slop, tuple(events))


class ReferenceModel:
    """The message_filters rule restated with explicit bookkeeping and brute force.

    Each queue is a list of ``[stamp, message, position]`` where ``position`` is a
    counter taken when the stamp (re-)entered the queue; all candidate combinations
    are enumerated and the valid one with the lexicographically smallest candidate
    ranks is chosen.
    """

    def __init__(self, num_inputs: int, queue_size: int, slop: float):
        self.queues = [[] for _ in range(num_inputs)]
        self.queue_size = queue_size
        self.slop_ns = int(slop * 1_000_000_000)
        self.counter = 0

    def add(self, index: int, msg, stamp: int) -> Optional[Tuple]:
        queue = self.queues[index]
        same = [entry for entry in queue if entry[0] == stamp]
        if same:
            same[0][1] = msg
        else:
            self.counter += 1
            queue.append([stamp, msg, self.counter])
        while len(queue) > self.queue_size:
            queue.remove(min(queue, key=lambda entry: entry[0]))
        if not any(entry[0] == stamp for entry in queue):
            return None
        ranked = []
        for other_index, other in enumerate(self.queues):
            if other_index != index:
                near = [e for e in other if abs(e[0] - stamp) <= self.slop_ns]
                ranked.append(sorted(near, key=lambda e: (abs(e[0] - stamp), e[2])))
        if any(not lst for lst in ranked):
            return None
        best = None
        for ranks in _all_rank_tuples([len(lst) for lst in ranked]):
            chosen = [lst[r] for lst, r in zip(ranked, ranks)]
            stamps = [e[0] for e in chosen] + [stamp]
            if max(stamps) - min(stamps) < self.slop_ns and (best is None or ranks < best):
                best = ranks
        if best is None:
            return None
        chosen = [lst[r] for lst, r in zip(ranked, best)]
        chosen.insert(index, next(e for e in queue if e[0] == stamp))
        for q, entry in zip(self.queues, chosen):
            q.remove(entry)
        return tuple(entry[1] for entry in chosen)


def _all_rank_tuples(lengths):
    if not lengths:
        return [()]
    return [(r,) + rest for r in range(lengths[0]) for rest in _all_rank_tuples(lengths[1:])]


def replay(case: StreamCase, add) -> List[Tuple[int, Tuple]]:
    """``(event number, emitted set of event numbers)`` for every set ``add`` emits."""
    out = []
    for number, (index, stamp) in enumerate(case.events):
        matched = add(index, number, stamp)
        if matched is not None:
            out.append((number, tuple(matched)))
    return out


def test_random_streams_match_the_reference_model():
    rng = random.Random(20240601)
    emitted_total = 0
    for _ in range(1500):
        case = random_stream(rng)
        ours = ApproximateTimeSync(case.num_inputs, case.queue_size, case.slop)
        reference = ReferenceModel(case.num_inputs, case.queue_size, case.slop)
        got = replay(case, ours.add)
        assert got == replay(case, reference.add), case
        emitted_total += len(got)
    assert emitted_total > 1000  # the streams do exercise pairing


# ------------------------------------------------------------------------ real message_filters


def replay_through_message_filters(case: StreamCase) -> List[Tuple[int, Tuple]]:
    """Feed ``case`` to the real ``message_filters.ApproximateTimeSynchronizer``.

    Messages are real ``sensor_msgs/Image`` objects whose header stamps carry the
    event's stamp and whose ``frame_id`` carries its event number; inputs are plain
    ``message_filters.SimpleFilter`` objects driven with ``signalMessage`` (no DDS).
    """
    import message_filters
    from sensor_msgs.msg import Image

    sources = [message_filters.SimpleFilter() for _ in range(case.num_inputs)]
    sync = message_filters.ApproximateTimeSynchronizer(sources, case.queue_size, case.slop)
    current: List[Tuple] = []
    sync.registerCallback(
        lambda *msgs: current.append(tuple(int(m.header.frame_id) for m in msgs))
    )
    out = []
    for number, (index, stamp) in enumerate(case.events):
        msg = Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        msg.header.frame_id = str(number)
        sources[index].signalMessage(msg)
        assert len(current) <= 1
        if current:
            out.append((number, current.pop()))
    return out


@pytest.mark.skipif(
    not HAVE_MESSAGE_FILTERS,
    reason="message_filters is not importable (it is not on PyPI; native ROS installs provide it)",
)
def test_random_streams_match_real_message_filters():
    rng = random.Random(7)
    for _ in range(300):
        case = random_stream(rng)
        ours = ApproximateTimeSync(case.num_inputs, case.queue_size, case.slop)
        assert replay(case, ours.add) == replay_through_message_filters(case), case
