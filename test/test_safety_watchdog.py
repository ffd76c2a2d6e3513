"""The watchdog core: statuses pass while they keep coming; silence, a lost liveliness or
an invalid status is a stop."""
import math

import pytest

from hrc_perception.safety.watchdog import OK, PROTECTIVE_STOP, UNKNOWN, WARNING, StatusWatchdog


def test_statuses_pass_while_they_keep_coming():
    w = StatusWatchdog(0.3)
    assert w.check(0.0) == "watchdog: no safety status received yet"
    assert w.on_status(OK, 1.0, 10.0) == (OK, 1.0, "")
    assert w.check(10.29) is None
    assert w.on_status(WARNING, 0.4, 10.3) == (WARNING, 0.4, "")
    assert w.on_status(UNKNOWN, 0.7, 10.35) == (UNKNOWN, 0.0, "")     # UNKNOWN never allows motion
    assert "0.36 s" in w.check(10.71)                                   # late: a stop is due
    assert w.silent_for(10.71) == pytest.approx(0.36)


@pytest.mark.parametrize("level, scale", [(7, 1.0), (OK, math.nan), (OK, 1.5), (WARNING, -0.1)])
def test_an_invalid_status_is_a_stop(level, scale):
    w = StatusWatchdog(0.3)
    out_level, out_scale, why = w.on_status(level, scale, 1.0)
    assert out_level == PROTECTIVE_STOP and out_scale == 0.0 and "invalid" in why and w.stops == 1


def test_lost_liveliness_is_a_stop_until_the_next_status():
    w = StatusWatchdog(0.3)
    w.on_status(OK, 1.0, 1.0)
    w.on_liveliness_lost()
    assert "liveliness" in w.check(1.1)
    w.on_status(OK, 1.0, 1.2)
    assert w.check(1.3) is None


def test_the_deadline_must_be_positive():
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            StatusWatchdog(bad)
