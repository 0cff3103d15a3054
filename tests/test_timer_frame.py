"""The safety timers run on the clock's timer (UTC, advanced monotonically), not on local time.

An audit (2026-12-06, with libfaketime) found the default clock's naive local time in every
safety timer: a re-open hold journaled or saved by a process in ``America/New_York`` was read
by a restart in ``UTC`` as five hours old and dropped, and the bot's next open went on top of
the live position; DST steps ended holds and graces early or held them an hour. These run the
default (system) clock in child processes under different ``TZ`` values, with no faked time.
The journal's event order after a clock that went back runs in-process on a ``ManualClock``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from position_manager_rs import ManualClock, PaperExchange, PositionManager
from position_manager_rs.journal import Journal

CHILD = Path(__file__).with_name("timer_child.py")
NEW_YORK = "America/New_York"


def child(phase: str, where: str, tz: str) -> dict[str, object]:
    env = {**os.environ, "TZ": tz}
    done = subprocess.run(
        [sys.executable, str(CHILD), phase, where],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(autouse=True)
def _zones_known() -> None:
    if not Path("/usr/share/zoneinfo", NEW_YORK).exists():
        pytest.skip("no time zone database (/usr/share/zoneinfo) to run under America/New_York")


@pytest.mark.parametrize("restart_tz", [NEW_YORK, "UTC", "Asia/Tokyo"])
def test_a_journaled_hold_holds_after_a_restart_under_another_time_zone(
    tmp_path: Path, restart_tz: str
) -> None:
    db = str(tmp_path / "j.db")
    assert child("journal-write", db, NEW_YORK) == {"held": True}
    after = child("journal-restart", db, restart_tz)
    assert after == {"opened": False, "contracts": 3.0}, "no second position on top"


@pytest.mark.parametrize("load_tz", [NEW_YORK, "UTC"])
def test_a_saved_hold_holds_after_a_load_under_another_time_zone(
    tmp_path: Path, load_tz: str
) -> None:
    path = str(tmp_path / "state.json")
    assert child("state-write", path, NEW_YORK) == {"held": True}
    assert child("state-load", path, load_tz) == {"opened": False, "contracts": 3.0}


def test_a_time_zone_change_inside_the_process_does_not_end_a_hold() -> None:
    # Local time jumps nine hours ahead (New York to Tokyo) a second after the hold began:
    # what a DST spring-forward does, nine times over.
    after = child("tz-jump", "Asia/Tokyo", NEW_YORK)
    assert after == {"opened": False, "contracts": 3.0}


def test_journal_events_keep_the_order_recorded_after_the_clock_went_back(tmp_path: Path) -> None:
    # The audit's dst_journal_order.py: two positions closed an hour's fall-back apart.
    db = str(tmp_path / "j.db")
    clock = ManualClock()
    paper = PaperExchange(seed=1, volatility=0.0, clock=clock)
    pm = PositionManager(paper, 0.02, clock=clock, journal=db, account="a")
    for symbol, reason in (("BTC/USDT:USDT", "first_close"), ("ETH/USDT:USDT", "second_close")):
        assert pm.open_position(symbol, "BUY", 1, 10, 0.05) is True
        assert pm.close_position(symbol, reason) is not None
        clock.advance(hours=-1)
    pm.journal_checkpoint()
    with Journal(db) as journal:
        events = journal.events(account="a")
        assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
        assert events[0]["time"] > events[-1]["time"], "the later events have earlier times"
        newest = journal.events(account="a", limit=1)
        assert [e["seq"] for e in newest] == [events[-1]["seq"]]
        assert newest[0]["reason"] == "second_close"
        closed = journal.closed_positions(account="a", limit=1)
        assert [(c["symbol"], c["reason"]) for c in closed] == [("ETH/USDT:USDT", "second_close")]
