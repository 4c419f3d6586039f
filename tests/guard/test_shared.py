"""The belief pooled by the guards of one process: its tally by window, and what a pool does."""

import threading

import pytest

from swalab.guard import PoolView, SharedBelief


def test_the_view_is_the_last_whole_window():
    pool = SharedBelief(window_s=0.5)
    a, b, c = pool.join(), pool.join(), pool.join()
    assert pool.view(0.1) is None  # no window has ended
    pool.note(a, 0.1, "sent")
    pool.note(a, 0.2, "rejected")
    pool.note(b, 0.3, "deferred")
    pool.note(b, 0.4, "deferred")
    assert pool.view(0.45) is None
    assert pool.view(0.6) == PoolView(window=0, sent=1, rejected=1, contenders=2, members=3)
    pool.note(c, 0.7, "sent")
    pool.note(c, 0.8, "sent")
    assert pool.view(0.9) == PoolView(window=0, sent=1, rejected=1, contenders=2, members=3)
    assert pool.view(1.0) == PoolView(window=1, sent=2, rejected=0, contenders=1, members=3)
    # windows in which nothing happened are empty, not a copy of the last busy one
    assert pool.view(2.7) == PoolView(window=4, sent=0, rejected=0, contenders=0, members=3)


def test_threads_share_one_tally():
    pool = SharedBelief(window_s=1.0)

    def client() -> None:
        me = pool.join()
        for _ in range(1000):
            pool.note(me, 0.5, "sent")

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pool.view(1.5) == PoolView(window=0, sent=8000, rejected=0, contenders=8, members=8)


@pytest.mark.parametrize("window_s", [0.0, -1.0, float("inf"), float("nan")])
def test_a_bad_window_is_named(window_s):
    with pytest.raises(ValueError, match=r"window_s=.* is out of range: must be > 0 seconds"):
        SharedBelief(window_s)


def test_transports_tally_what_their_policies_do():
    httpx = pytest.importorskip("httpx", reason="needs the guard extra")
    import time

    from swalab.guard import Backoff, GuardTransport, Naive

    def server(request):  # each client's first attempt is refused, its retry admitted
        seen[request.headers["x-client"]] += 1
        return httpx.Response(429 if seen[request.headers["x-client"]] == 1 else 200)

    seen = {"a": 0, "b": 0}
    pool = SharedBelief(window_s=1e6)  # one window for the whole test
    mock = httpx.MockTransport(server)
    naive = GuardTransport(Naive(), inner=mock, shared=pool)
    backoff = GuardTransport(Backoff("full", base=0.001, cap=0.002), inner=mock, shared=pool)
    alone = GuardTransport(Naive(), inner=mock)  # not pooled: not counted
    for name, transport in (("a", naive), ("b", backoff), ("a", alone)):
        with httpx.Client(transport=transport) as client:
            client.get("http://limit.test/x", headers={"x-client": name})
    view = pool.view(time.monotonic() + 1e6)
    assert view == PoolView(view.window, sent=4, rejected=2, contenders=2, members=2)


def test_room_is_the_last_remaining_heard_less_the_sends_since():
    pool = SharedBelief(window_s=1.0)
    me = pool.join()
    pool.align(1.0)  # the server's windows end at whole seconds
    assert pool.view(0.5) is None  # counting starts here: no whole window yet
    assert pool.view(1.0) == PoolView(0, sent=0, rejected=0, contenders=0, members=1)
    pool.note(me, 1.1, "sent")
    pool.heard(1.2, 5, window_end=2.0)
    pool.note(me, 1.3, "sent")
    pool.heard(1.4, 7, window_end=2.0)  # answered before the 1.3 send reached it: kept at 4
    pool.note(me, 1.5, "deferred")
    assert pool.view(1.6).room == 4
    assert pool.view(2.0) == PoolView(1, sent=2, rejected=0, contenders=1, members=1)
    pool.heard(2.05, 0, window_end=2.0)  # late news of the window that ended: ignored
    assert pool.view(2.1).room is None
    pool.heard(2.2, 3, window_end=3.0)
    pool.note(me, 2.3, "sent")
    assert pool.view(2.4).room == 2
    assert pool.view(3.0).room is None  # a new window: nothing heard in it yet
