"""The node's /diagnostics checks as units, against diagnostic_updater's levels and messages.

The expected levels, messages and figures are worked out by hand from the counts, times and
delays fed in, following diagnostic_updater's FrequencyStatus, TimeStampStatus and
mergeSummary (ros/diagnostics, branch ros2, diagnostic_updater/_update_functions.py).
"""

from __future__ import annotations

import pytest

pytest.importorskip("diagnostic_msgs", reason="diagnostic_msgs (ROS 2 wheels) is not importable")

from sosmaskfuse_ros.diagnostics import (  # noqa: E402
    ERROR,
    OK,
    WARN,
    FrequencyCheck,
    InputMonitor,
    KeyedThrottle,
    OutputMonitor,
    StampCheck,
    merge_summaries,
    status_name,
)

NOW = 1000.0


def feed(check: StampCheck, delays) -> None:
    for delay in delays:
        check.stamp(NOW - delay, NOW)


def events(check, n: int) -> None:
    for _ in range(n):
        check.event()


# --- FrequencyStatus -------------------------------------------------------------------------


def test_the_rate_over_a_ring_of_updates_with_the_tolerance():
    check = FrequencyCheck(min_rate=5.0, max_rate=15.0, now_s=0.0, window=2)
    events(check, 10)
    level, message, values = check.update(1.0)  # slot 0 (0 events at t=0): 10 in 1 s
    assert (level, message) == (OK, "Desired frequency met")
    assert values == {
        "Events in window": "10",
        "Events since startup": "10",
        "Duration of window (s)": "1.000000",
        "Actual frequency (Hz)": "10.000000",
        "Minimum acceptable frequency (Hz)": "4.500000",  # 5 Hz less 10%
        "Maximum acceptable frequency (Hz)": "16.500000",  # 15 Hz plus 10%
    }
    events(check, 2)
    level, message, values = check.update(2.0)  # slot 1 (0 at t=0): 12 in 2 s
    assert (level, values["Actual frequency (Hz)"]) == (OK, "6.000000")
    level, message, _ = check.update(3.0)  # slot 0 (10 at t=1): 2 in 2 s = 1 Hz < 4.5
    assert (level, message) == (WARN, "Frequency too low.")
    level, message, values = check.update(4.0)  # slot 1 (12 at t=2): none for 2 s
    assert (level, message) == (ERROR, "No events recorded.")
    assert values["Events since startup"] == "12"
    events(check, 40)
    level, message, _ = check.update(5.0)  # slot 0 (12 at t=3): 40 in 2 s = 20 Hz > 16.5
    assert (level, message) == (WARN, "Frequency too high.")


@pytest.mark.parametrize(
    "count,level,message",
    [
        (109, OK, "Desired frequency met"),  # 10.9 Hz: within 10 Hz plus 10%
        (91, OK, "Desired frequency met"),  # 9.1 Hz: within 10 Hz less 10%
        (112, WARN, "Frequency too high."),
        (88, WARN, "Frequency too low."),
    ],
)
def test_the_tolerance_around_a_target_rate(count, level, message):
    check = FrequencyCheck(min_rate=10.0, max_rate=10.0, now_s=0.0, window=1)
    events(check, count)
    got = check.update(10.0)
    assert got[:2] == (level, message)
    assert got[2]["Target frequency (Hz)"] == "10.000000"


def test_the_window_starts_at_clear_and_the_keys_follow_the_bounds():
    check = FrequencyCheck(min_rate=0.0, now_s=10.0)  # no lower bound, no upper bound
    level, message, values = check.update(11.0)
    assert (level, message) == (ERROR, "No events recorded.")  # even without bounds
    assert "Minimum acceptable frequency (Hz)" not in values
    assert "Maximum acceptable frequency (Hz)" not in values
    events(check, 1)
    assert check.update(12.0)[:2] == (OK, "Desired frequency met")  # 1 in 2 s, any rate is fine
    target = FrequencyCheck(min_rate=10.0, max_rate=10.0, now_s=0.0)
    events(target, 10)
    assert target.update(1.0)[2]["Target frequency (Hz)"] == "10.000000"
    check.clear(20.0)
    assert check.update(20.0)[2]["Events since startup"] == "0"


# --- TimeStampStatus -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "delays",
    [
        (0.1, 0.2, 5.0),  # one stale stamp last
        (5.0, 0.1, 0.2),  # ... first
        (0.1, 5.0, 0.2),  # ... in between
        (5.0,),
        (5.0, 6.0, 7.0),
    ],
)
def test_one_stale_stamp_among_fresh_ones_is_an_error(delays):
    check = StampCheck(max_acceptable=1.0)
    feed(check, delays)
    level, message, values = check.update()
    assert (level, message) == (ERROR, "Timestamps too far in past seen.")
    assert values["Latest timestamp delay:"] == f"{max(delays):f}"
    assert values["Earliest timestamp delay:"] == f"{min(delays):f}"
    assert values["Late diagnostic update count:"] == "1"
    assert values["Latest acceptable timestamp delay:"] == "1.000000"


def test_fresh_stamps_are_ok_and_each_period_starts_afresh():
    check = StampCheck(max_acceptable=1.0)
    feed(check, (0.05, 0.5, 0.999))
    assert check.update()[:2] == (OK, "Timestamps are reasonable.")
    feed(check, (3.0,))
    assert check.update()[0] == ERROR
    feed(check, (0.1,))  # the stale stamp belonged to the last period only
    level, message, values = check.update()
    assert (level, message) == (OK, "Timestamps are reasonable.")
    assert values["Late diagnostic update count:"] == "1"  # the tally stays
    level, message, values = check.update()  # nothing since
    assert (level, message) == (WARN, "No data since last update.")
    assert values["Latest timestamp delay:"] == "0.000000"


def test_stamps_from_the_future_and_both_ways_at_once():
    check = StampCheck(max_acceptable=1.0)  # min_acceptable -1 s, diagnostic_updater's default
    feed(check, (0.1, -0.9))  # 0.9 s ahead: within it
    assert check.update()[0] == OK
    feed(check, (0.1, -1.5, 0.2))
    assert check.update()[:2] == (ERROR, "Timestamps too far in future seen.")
    feed(check, (2.0, -1.5))  # both: the later check's message, both tallies
    level, message, values = check.update()
    assert (level, message) == (ERROR, "Timestamps too far in past seen.")
    assert values["Early diagnostic update count:"] == "2"
    assert values["Late diagnostic update count:"] == "1"


def test_a_zero_stamp_is_an_error_among_others_and_no_data_alone():
    check = StampCheck(max_acceptable=5.0)
    check.stamp(0.0, NOW)
    feed(check, (0.1,))
    level, message, values = check.update()
    assert (level, message) == (ERROR, "Zero timestamp seen.")
    assert values["Latest timestamp delay:"] == "0.100000"  # the zero gave no delay
    check.stamp(0.0, NOW)
    assert check.update()[:2] == (WARN, "No data since last update.")  # as diagnostic_updater


# --- composing -------------------------------------------------------------------------------


def test_merge_takes_the_worst_level_and_joins_messages_of_its_kind():
    assert merge_summaries([]) == (OK, "")
    assert merge_summaries([(OK, "a"), (OK, "b")]) == (OK, "a; b")
    assert merge_summaries([(OK, "a"), (WARN, "w"), (OK, "b")]) == (WARN, "w")
    assert merge_summaries([(WARN, "w"), (ERROR, "e")]) == (ERROR, "w; e")


def test_an_input_merges_its_checks_and_counts_bad_and_flat_frames_per_period():
    monitor = InputMonitor("/cam/thermal", 0.5, 100.0, 1.0, now_s=NOW - 1.0)
    monitor.message(NOW - 0.1, NOW)
    monitor.message(NOW - 3.0, NOW)  # one stale stamp
    level, message, values = monitor.update(NOW)
    assert (level, message) == (ERROR, "Timestamps too far in past seen.")
    assert values["topic"] == "/cam/thermal" and values["Events in window"] == "2"
    monitor.message(NOW + 1.0 - 0.1, NOW + 1.0)
    monitor.bad("unsupported encoding 'yuv_fancy'")
    monitor.bad("data has 100 bytes")
    level, message, _ = monitor.update(NOW + 1.0)
    assert (level, message) == (WARN, "2 bad message(s): data has 100 bytes")
    for flat in (True, False, True):  # a flat-field correction frame among good ones
        monitor.message(NOW + 2.0 - 0.1, NOW + 2.0)
        monitor.frame(flat, 0.0)
    level, message, values = monitor.update(NOW + 2.0)
    assert (level, message) == (OK, "Desired frequency met; Timestamps are reasonable.")
    assert values["flat frames since the last update"] == "2/3"
    for _ in range(3):  # a dead sensor: every frame flat
        monitor.message(NOW + 3.0 - 0.1, NOW + 3.0)
        monitor.frame(True, 0.0)
    level, message, _ = monitor.update(NOW + 3.0)
    assert level == WARN and message.startswith("all 3 frame(s) since the last update are flat")
    monitor.extra = (WARN, "camera_info refused: size 0x0")
    monitor.message(NOW + 4.0 - 0.1, NOW + 4.0)
    assert monitor.update(NOW + 4.0)[:2] == (WARN, "camera_info refused: size 0x0")


def test_a_silent_input_is_an_error_with_both_reasons():
    monitor = InputMonitor("/cam/visible", 1.0, 100.0, 5.0, now_s=0.0)
    assert monitor.update(1.0)[:2] == (ERROR, "No events recorded.; No data since last update.")


def test_the_output_checks_rate_and_age_and_restarts_when_idle():
    output = OutputMonitor("/fused_image", 2.0, 1.0, now_s=NOW - 1.0)
    for delay in (0.2, 0.3, 0.25):
        output.published(NOW - delay, NOW)
    level, message, values = output.update(NOW)
    assert (level, message) == (OK, "Desired frequency met; Timestamps are reasonable.")
    assert values["Actual frequency (Hz)"] == "3.000000"
    # the ring's next slot still holds the start: 3 published over 2 s, 1.5 Hz < 1.8 Hz
    assert output.update(NOW + 1.0)[:2] == (
        WARN,
        "Frequency too low.; No data since last update.",
    )
    level, message, _ = output.idle(NOW + 2.0)
    assert (level, message) == (OK, "no subscriber on any output: not decoding or fusing")
    output.published(NOW + 2.5 - 0.1, NOW + 2.5)
    output.published(NOW + 2.9 - 0.1, NOW + 2.9)
    level, _, values = output.update(NOW + 3.0)  # the window restarted at the idle update
    assert (level, values["Actual frequency (Hz)"]) == (OK, "2.000000")


def test_status_names_and_the_keyed_throttle():
    assert status_name("sosmaskfuse", "fusion") == "sosmaskfuse: fusion"
    assert status_name("/robot/sosmaskfuse", "fusion") == "/robot/sosmaskfuse: fusion"  # use_fqn
    throttle = KeyedThrottle(period=60.0)
    assert throttle.allow(("thermal", "encoding"))
    assert throttle.allow(("visible", "encoding"))  # another key is not held back
    assert not throttle.allow(("thermal", "encoding"))
