"""A timing-critical stretch runs ahead of ordinary work and gives the priority back:
only the calling thread moves, and only inside the stretch (drivers/priority.py)."""

from __future__ import annotations

import os
import threading

from drivers.priority import ahead_while


def _in_thread(fn):
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(fn()))
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "the thread did not finish within 10 s"
    return out


def test_the_stretch_runs_at_what_it_got_and_the_thread_gets_its_nice_value_back():
    main_before = os.getpriority(os.PRIO_PROCESS, 0)

    def stretch():
        before = os.getpriority(os.PRIO_PROCESS, 0)
        with ahead_while(before - 5) as got:
            inside = os.getpriority(os.PRIO_PROCESS, 0)
            main_meanwhile = os.getpriority(os.PRIO_PROCESS, threading.main_thread().native_id)
        return {"before": before, "got": got, "inside": inside, "after": os.getpriority(os.PRIO_PROCESS, 0),
                "main": main_meanwhile}

    r = _in_thread(stretch)
    assert r["inside"] == r["got"]
    assert r["got"] in (r["before"], r["before"] - 5)  # raised where permitted, else as it was
    assert r["after"] == r["before"]
    assert r["main"] == main_before  # another thread of the process stays ordinary work


def test_the_nice_value_comes_back_when_the_stretch_raises():
    def stretch():
        before = os.getpriority(os.PRIO_PROCESS, 0)
        try:
            with ahead_while(before - 5):
                raise RuntimeError("the reads failed")
        except RuntimeError:
            pass
        return {"before": before, "after": os.getpriority(os.PRIO_PROCESS, 0)}

    r = _in_thread(stretch)
    assert r["after"] == r["before"]
