"""Window routing by event time, lateness, closing and quality counts (no servers)."""

from __future__ import annotations

import numpy as np

from driftline_drift_detection.windows import WindowManager, WindowState
from driftline_stats.detector import FeatureReference

RNG = np.random.default_rng(0)
REFS = [
    FeatureReference.from_values("x", RNG.normal(size=2000).tolist()),
    FeatureReference.from_values("c", RNG.choice(["a", "b"], 2000).tolist(), categorical=True),
]
KEY = ("t", "m")


def ev(t: float, x: object = 0.5, c: object = "a") -> dict[str, object]:
    return {"occurred_at": t, "model_version": "1", "features": {"x": x, "c": c}}


def manager() -> WindowManager:
    wm = WindowManager(idle_close_s=30)
    wm.configure(KEY, length=60, grace=10, refs=REFS)
    return wm


def test_events_go_to_their_event_time_window_and_close_after_the_grace():
    wm = manager()
    assert wm.add(KEY, 0, [ev(5), ev(59.9), ev(60), ev(65)], now_wall=0) == 4
    assert sorted((k[4], w.events) for k, w in wm.windows.items()) == [(0, 2), (60, 2)]
    assert wm.ready(now_wall=1) == []  # watermark 65 < 60 + 10
    wm.add(KEY, 0, [ev(71)], now_wall=1)
    [first] = wm.ready(now_wall=2)
    assert first.start == 0
    wm.close(first)
    assert wm.add(KEY, 0, [ev(30)], now_wall=3) == 0  # its window is closed: too late
    assert wm.too_late == 1


def test_late_events_within_grace_are_counted_and_marked_late():
    wm = manager()
    wm.add(KEY, 0, [ev(100)], now_wall=0)
    wm.add(KEY, 0, [ev(61)], now_wall=0)  # 39 s behind the watermark: late, window open
    w = wm.windows[("t", "m", "1", "", 60.0)]
    assert (w.events, w.late) == (2, 1)


def test_a_quiet_model_closes_on_wall_clock():
    wm = manager()
    wm.add(KEY, 0, [ev(5)], now_wall=100)
    assert wm.ready(now_wall=120) == []
    assert [w.start for w in wm.ready(now_wall=131)] == [0]


def test_missing_values_and_type_errors_are_counted_not_dropped_silently():
    wm = manager()
    wm.add(KEY, 0, [ev(1, x=None), ev(2, x="oops"), ev(3, x=2.0, c=None), ev(4, c="zz")], 0)
    w = wm.windows[("t", "m", "1", "", 0.0)]
    x, c = w.profiles["x"], w.profiles["c"]
    assert (w.events, w.type_errors) == (4, {"x": 1})
    assert (x.n, x.missing) == (2, 1)
    assert (c.missing, c.unseen) == (1, {"zz": 1})


def test_window_state_round_trips_through_json():
    wm = manager()
    wm.add(KEY, 3, [ev(float(i), x=float(i)) for i in range(50)], 0)
    w = wm.windows[("t", "m", "1", "", 0.0)]
    back = WindowState.from_json(w.key, w.to_json())
    assert back.to_json() == w.to_json()
    assert back.partition == 3
