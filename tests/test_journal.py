"""The journal (issue 15) through Python, on SQLite and PostgreSQL: restart restores the book,
the bot's attributes and the history; every event is written once, before the call returns;
a database that fails later is logged and evented and never stops the manager; the reader."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest
from bot_sim import (
    BotLikeClient,
    assert_as_it_was,
    bot_with_btc,
    bots_manager,
    cycle_on_failed_reads,
    lost_scale_out_on_failed_reads,
    with_breakout_targets,
)
from helpers_clients import (
    assert_the_same_position,
    closed_behind_a_lagging_list,
    cycles_after_a_lagging_close,
    cycles_behind_the_lagging_list,
    estimated_entry_venue,
    listed_with_an_estimated_entry,
    opened_behind_a_lagging_list,
    removed_with_an_estimated_entry,
    run_memory_limited,
    scaled_in_behind_a_lagging_list,
    untracked_by_empty_answers_then_back,
)
from journal_helpers import (
    client_certificate_role,
    fresh_postgres,
    journal_url,
    postgres_base,
    postgres_ca,
    psql,
)

from position_manager_rs import (
    Journal,
    JournalError,
    PaperExchange,
    Position,
    PositionManager,
)

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
SOL = "SOL/USDT:USDT"
NO_CLIENT: Any = object()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return journal_url(request.param, tmp_path, "j")


def sqlite_in_child(path: str | Path, sql: str) -> list[list[Any]]:
    """Runs ``sql`` on the SQLite file ``path`` in a child process; returns the last
    statement's rows. Never in this process: its SQLite copy and the package's would release
    each other's file locks (docs/journal.md)."""
    code = (
        "import json, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1])\n"
        "*init, last = [s for s in sys.argv[2].split(';') if s.strip()]\n"
        "for s in init: db.execute(s)\n"
        "rows = db.execute(last).fetchall()\n"
        "db.commit(); db.close()\n"
        "print(json.dumps(rows))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows: list[list[Any]] = json.loads(done.stdout)
    return rows


def journal_keys(url: str, account: str, table: str = "pmrs_closing") -> list[str]:
    """The keys of ``account``'s rows in the journal's ``table`` (by default its closes
    awaiting confirmation), read with SQL rather than through the reader."""
    sql = f"SELECT symbol FROM {table} WHERE account = '{account}' ORDER BY symbol"
    if url.startswith("postgresql://"):
        return psql(url, sql).splitlines()
    return [row[0] for row in sqlite_in_child(url, sql)]


def run_sql(url: str, sql: str) -> None:
    if url.startswith("postgresql://"):
        psql(url, sql)
    else:
        sqlite_in_child(url, sql)


def seqs(events: Sequence[Mapping[str, Any]]) -> list[int]:
    return [e["seq"] for e in events]


def test_a_restarted_manager_gets_back_its_book_attributes_tombstones_and_history(url: str) -> None:
    paper = PaperExchange(seed=3, volatility=0.0003)
    pm = PositionManager(paper, clock=paper.clock, journal=url, account="bot-1")
    assert pm.open_position(BTC, "BUY", 5, 10)
    assert pm.open_position(ETH, "SELL", 3, 5)
    pm.positions[BTC].strategy = "breakout"  # set after open_position returned
    pm.positions[ETH].market_regime = {"trend": "down", "score": 10**30}
    for _ in range(5):
        paper.advance(3)
        list(pm.update_positions())  # trailing stops move; the cycle's end journals them
    paper.close_externally(ETH)
    list(pm.update_positions())  # ETH removed: a tombstone
    before = {s: p.to_dict() for s, p in pm.positions.items()}
    history = pm.events
    assert [e["kind"] for e in history][:2] == ["opened", "opened"]
    del pm

    again = PositionManager(paper, clock=paper.clock, journal=url, account="bot-1")
    assert {s: p.to_dict() for s, p in again.positions.items()} == before
    assert again.positions[BTC].strategy == "breakout"
    events = again.events
    assert events[: len(history)] == history
    assert [e["kind"] for e in events[len(history) :]] == ["loaded"]
    assert events[-1]["reason"] == "journal"
    assert seqs(events) == list(range(1, len(events) + 1))
    assert again.journal_status == {
        "journal": again.journal_status["journal"],  # type: ignore[index]
        "account": "bot-1",
        "journal_sync": "full",
        "queued_events": 0,
        "fenced": False,
        "failing": False,
    }
    with Journal(url) as journal:
        closed = journal.closed_positions(account="bot-1")
        assert [(c["symbol"], c["kind"]) for c in closed] == [(ETH, "removed")]
        assert closed[0]["attributes"] == {"market_regime": {"trend": "down", "score": 10**30}}
        assert [p["symbol"] for p in journal.open_positions("bot-1")] == [BTC]


def test_every_event_is_in_the_journal_before_the_call_returns(url: str) -> None:
    pm = PositionManager(NO_CLIENT, journal=url, account="a")
    journal = Journal(url)
    for i in range(5):
        pm.positions[f"S{i}/USDT:USDT"] = Position(f"S{i}/USDT:USDT", "long", 100, 1, 10, 95, 110)
        assert seqs(journal.events(account="a")) == list(range(1, i + 2))
    pm.modify_position_targets("S0/USDT:USDT", 96.0, 120.0)
    del pm.positions["S1/USDT:USDT"]
    kinds = [e["kind"] for e in journal.events(account="a")]
    assert kinds[-2:] == ["targets_changed", "untracked"]
    open_rows = journal.open_positions("a")
    assert [r["symbol"] for r in open_rows] == [f"S{i}/USDT:USDT" for i in (0, 2, 3, 4)]
    assert open_rows[0]["stop_loss"] == 96.0 and open_rows[0]["take_profit"] == 120.0
    assert journal.events(account="a") == [dict(e, account="a", attributes={}) for e in pm.events]


def test_attributes_set_after_an_event_reach_the_journal_with_the_close(url: str) -> None:
    paper = PaperExchange(seed=5)
    pm = PositionManager(paper, clock=paper.clock, journal=url)
    assert pm.open_position(BTC, "BUY", 2, 10)
    pm.positions[BTC].rl_strategy = "ppo-7"  # no event, no cycle in between
    paper.advance(2)
    pnl = pm.close_position(BTC, "take_profit")
    assert pnl is not None
    closed = Journal(url).closed_positions()
    assert len(closed) == 1
    row = closed[0]
    assert (row["account"], row["kind"], row["reason"]) == ("default", "closed", "take_profit")
    assert row["pnl"] == pytest.approx(pnl)
    assert row["attributes"] == {"rl_strategy": "ppo-7"}
    assert Journal(url).open_positions() == []


def test_journal_position_writes_attributes_at_once(url: str) -> None:
    pm = PositionManager(NO_CLIENT, journal=url)
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    pm.positions[BTC].strategy = "mean_reversion"
    assert Journal(url).open_positions()[0]["attributes"] == {}
    assert pm.journal_position(BTC) is True
    assert Journal(url).open_positions()[0]["attributes"] == {"strategy": "mean_reversion"}
    assert pm.journal_position("NOPE") is False
    pm.positions[BTC].stop_loss = 97.0
    assert pm.journal_checkpoint() is True
    assert Journal(url).open_positions()[0]["stop_loss"] == 97.0


@pytest.mark.parametrize("legs", [("BUY",), ("BUY", "SELL")], ids=["one_leg", "both_legs"])
def test_a_hedge_leg_is_journaled_when_opened_not_at_the_next_cycle(
    url: str, legs: tuple[str, ...]
) -> None:
    # A bot killed right after open_position returned, before any update cycle: the restarted
    # bot must hold the legs as they were (entry, stops, targets), also while the venue's list
    # cannot be read. Earlier builds journaled a hedge leg's open under the plain symbol,
    # which is no key of the book, so the leg's row was written only at the next cycle's end:
    # the restarted bot held nothing and opened the leg again on top of the live one (or, with
    # a list, imported it as a new position).
    paper = PaperExchange(seed=6, position_mode="hedge", volatility=0.0)
    pm = PositionManager(paper, clock=paper.clock, position_mode="hedge", journal=url)
    for signal in legs:
        assert pm.open_position(BTC, signal, 5 if signal == "BUY" else 3, 10)
    keys = [f"{BTC}@long", f"{BTC}@short"][: len(legs)]
    # An event names the book's key (docs/configuration.md, hedge mode).
    assert [(e["kind"], e["symbol"]) for e in pm.events] == [("opened", k) for k in keys]
    before = {k: p.to_dict() for k, p in pm.positions.items()}
    with Journal(url) as journal:
        assert [p["symbol"] for p in journal.open_positions()] == keys
    del pm  # killed: no update cycle, no checkpoint

    paper.fail_next("get_open_positions", 2)  # the restarted bot cannot read the list yet
    again = PositionManager(paper, clock=paper.clock, position_mode="hedge", journal=url)
    again.sync_existing_positions()
    fills = len(paper.events(["fill"]))
    for signal in legs:  # the bot's guard before it opens a leg
        key = f"{BTC}@{'long' if signal == 'BUY' else 'short'}"
        if not again.has_position(key):
            again.open_position(BTC, signal, 5 if signal == "BUY" else 3, 10)
    assert len(paper.events(["fill"])) == fills, "nothing opened on top"
    list(again.update_positions())  # the list answers: the very legs, restored
    assert {k: p.to_dict() for k, p in again.positions.items()} == before
    assert [(e["kind"], e["symbol"]) for e in again.events] == [
        *(("opened", k) for k in keys),
        *(("loaded", k) for k in keys),
    ]


def test_hedge_mode_legs_are_journaled_and_restored_under_their_keys(url: str) -> None:
    paper = PaperExchange(seed=6, position_mode="hedge", volatility=0.0)
    pm = PositionManager(paper, clock=paper.clock, position_mode="hedge", journal=url)
    assert pm.open_position(BTC, "BUY", 5, 10)
    assert pm.open_position(BTC, "SELL", 3, 10)
    pm.positions[f"{BTC}@short"].strategy = "hedge"
    # A plain symbol names its one tracked leg only; with both legs tracked it names none.
    assert pm.journal_position(BTC) is False
    assert pm.journal_position(f"{BTC}@short") is True
    before = {k: p.to_dict() for k, p in pm.positions.items()}
    assert sorted(before) == [f"{BTC}@long", f"{BTC}@short"]
    assert pm.close_position(f"{BTC}@long", "manual") is not None
    assert pm.journal_position(BTC) is True  # now the short leg
    del pm

    again = PositionManager(paper, clock=paper.clock, position_mode="hedge", journal=url)
    assert {k: p.to_dict() for k, p in again.positions.items()} == {
        f"{BTC}@short": before[f"{BTC}@short"]
    }
    assert again.positions[f"{BTC}@short"].strategy == "hedge"
    assert again.positions[f"{BTC}@short"].side == "short"
    list(again.update_positions())  # the venue still holds the short leg: nothing is removed
    assert list(again.positions) == [f"{BTC}@short"]
    with Journal(url) as journal:
        assert [(c["symbol"], c["kind"]) for c in journal.closed_positions()] == [
            (f"{BTC}@long", "closed")
        ]
        assert [p["symbol"] for p in journal.open_positions()] == [f"{BTC}@short"]


def test_a_failing_database_is_logged_evented_and_caught_up_never_raised(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = Mock()
    client.get_open_positions.return_value = [{"symbol": BTC, "side": "long", "contracts": 1}]
    client.get_ticker.return_value = {"last": 100.0}
    client.get_ohlcv.return_value = []
    pm = PositionManager(client, journal=url, account="a")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    run_sql(url, "ALTER TABLE pmrs_events RENAME TO pmrs_events_away")
    with caplog.at_level(logging.WARNING, logger="TradingBot"):
        pm.modify_position_targets(BTC, 96.0, None)  # cannot be written: queued
        assert list(pm.update_positions()) == []  # the cycle runs as usual
        pm.positions[ETH] = Position(ETH, "long", 10, 1, 10, 9, 11)
    failures = [e for e in pm.events if e["kind"] == "journal_failed"]
    assert len(failures) == 1, "one journal_failed event per outage"
    assert "pmrs_events" in failures[0]["reason"]
    assert any("Journal write failed" in r.getMessage() for r in caplog.records)
    assert pm.journal_status["queued_events"] >= 3  # type: ignore[index]
    assert pm.journal_checkpoint() is False
    run_sql(url, "ALTER TABLE pmrs_events_away RENAME TO pmrs_events")
    assert pm.journal_checkpoint() is True
    assert pm.journal_status["queued_events"] == 0  # type: ignore[index]
    written = Journal(url).events(account="a")
    assert seqs(written) == seqs(pm.events) == list(range(1, len(pm.events) + 1))
    assert {r["symbol"] for r in Journal(url).open_positions("a")} == {BTC, ETH}


def test_a_second_manager_on_the_same_account_takes_it_over(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = PositionManager(NO_CLIENT, journal=url, account="shared")
    first.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    second = PositionManager(NO_CLIENT, journal=url, account="shared")
    assert list(second.positions) == [BTC]
    assert first.journal_status["fenced"] is False  # type: ignore[index]
    with caplog.at_level(logging.DEBUG, logger="TradingBot"):
        first.positions[ETH] = Position(ETH, "long", 10, 1, 10, 9, 11)  # fenced: not written
        assert [e["kind"] for e in first.events][-1] == "journal_failed"
        assert "claimed by another manager" in first.events[-1]["reason"]
        # Fencing is for good: logged and evented once, nothing queued, nothing retried.
        first.positions[SOL] = Position(SOL, "short", 20, 1, 10, 21, 19)
        first.modify_position_targets(ETH, 8.5, 12)
        del first.positions[SOL]
        assert first.journal_checkpoint() is False
    journal_logs = [r for r in caplog.records if "Journal" in r.getMessage()]
    claimed = [(r.levelname, "claimed by another manager" in r.getMessage()) for r in journal_logs]
    assert claimed == [("ERROR", True)]
    assert [e["kind"] for e in first.events].count("journal_failed") == 1
    assert first.journal_status["fenced"] is True  # type: ignore[index]
    assert first.journal_status["queued_events"] == 0
    assert second.journal_status["fenced"] is False
    del second.positions[BTC]
    rows = Journal(url).events(account="shared")
    assert [r["kind"] for r in rows] == ["added", "loaded", "untracked"]


def test_a_fenced_manager_sends_no_order_not_even_a_reduction(url: str) -> None:
    """A bot started twice on one account: the newer manager claims it and trades it. The older
    one, fenced, already sent no open; it still sent its reductions (a stop never waits for a
    database), so both took the same partial exit and the venue sold twice what one bot would
    (found by an audit on 2026-12-07). A fenced manager now sends no order at all."""
    paper = PaperExchange(seed=1, volatility=0.0)
    options: dict[str, Any] = {"clock": paper.clock, "ticker_retry_delays": ()}
    older = PositionManager(paper, 0.02, journal=url, account="acct", **options)
    assert older.open_position(BTC, "BUY", 100, 10)
    newer = PositionManager(paper, 0.02, journal=url, account="acct", **options)
    assert list(newer.positions) == [BTC]
    listed = paper.get_open_positions()[0]["contracts"]
    price = paper.get_ticker(BTC)
    assert price is not None
    paper.set_price(BTC, price["last"] * 1.003)  # the first partial exit's target
    price = paper.get_ticker(BTC)
    assert price is not None

    def orders_of(call: Any) -> list[str]:
        before = len(paper.calls)
        call()
        sent = ("create_market_order", "create_limit_order", "close_position")
        return [c[0] for c in paper.calls[before:] if c[0] in sent]

    assert orders_of(lambda: list(older.update_positions())) == []
    assert older.journal_status["fenced"] is True  # type: ignore[index]
    assert orders_of(lambda: older.scale_out_position(BTC, 0.5)) == []
    assert orders_of(lambda: older.close_position(BTC, "manual")) == []
    assert orders_of(lambda: older.scale_in_position(BTC, 10, price["last"])) == []
    assert orders_of(lambda: older.open_position(ETH, "BUY", 1, 10)) == []
    assert paper.get_open_positions()[0]["contracts"] == listed
    # The newer manager takes the partial exit, once.
    assert orders_of(lambda: list(newer.update_positions())) == ["create_market_order"]
    assert paper.get_open_positions()[0]["contracts"] == listed * 0.75


def test_threads_inside_one_manager_lose_and_double_no_event(url: str) -> None:
    pm = PositionManager(NO_CLIENT, journal=url, journal_sync="normal")
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(15):
                symbol = f"T{t}X{i}/USDT:USDT"
                pm.positions[symbol] = Position(symbol, "long", 100, 1, 10, 95, 110)
                if i % 3 == 0:
                    del pm.positions[symbol]
                else:
                    pm.modify_position_targets(symbol, 96.0, None)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "deadlock"
    assert not errors
    journal = Journal(url)
    written = journal.events(account="default")
    assert sorted(seqs(written)) == seqs(pm.events) == list(range(1, 4 * 15 * 2 + 1))
    assert {r["symbol"] for r in journal.open_positions()} == set(pm.positions)


def test_several_managers_share_one_database(url: str) -> None:
    managers = [PositionManager(NO_CLIENT, journal=url, account=f"acct-{i}") for i in range(3)]

    def work(pm: PositionManager) -> None:
        for i in range(10):
            pm.positions[f"S{i}/USDT:USDT"] = Position(
                f"S{i}/USDT:USDT", "long", 100, 1, 10, 95, 110
            )

    threads = [threading.Thread(target=work, args=(pm,)) for pm in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    journal = Journal(url)
    accounts = journal.accounts()
    assert [(a["account"], a["last_seq"], a["open_positions"]) for a in accounts] == [
        (f"acct-{i}", 10, 10) for i in range(3)
    ]
    assert len(journal.events()) == 30
    assert len(journal.open_positions()) == 30


def test_the_readers_symbol_filter_matches_the_symbol_and_its_legs_exactly(url: str) -> None:
    # SQLite's LIKE ignores ASCII case: the legs' match also took another symbol's legs that
    # differ only in case, on SQLite and not on PostgreSQL (found by an audit, 2026-12-06).
    pm = PositionManager(NO_CLIENT, journal=url, account="h", position_mode="hedge")
    lower = BTC.lower()
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    pm.positions[lower] = Position(lower, "short", 100, 1, 10, 105, 90)
    pm.positions["BTC/USDT:USDT_X"] = Position("BTC/USDT:USDT_X", "long", 100, 1, 10, 95, 110)
    journal = Journal(url)
    assert [e["symbol"] for e in journal.events(symbol=BTC)] == [f"{BTC}@long"]
    assert [e["symbol"] for e in journal.events(symbol=lower)] == [f"{lower}@short"]
    assert journal.events(symbol="BTC/USDT:USDT_") == []
    assert journal.events(symbol="BTC/USDT:USDT%") == []


def test_the_reader_filters_and_gives_pandas_frames(url: str) -> None:
    pm = PositionManager(NO_CLIENT, journal=url, account="main")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    pm.positions[ETH] = Position(ETH, "short", 10, 1, 10, 11, 9)
    del pm.positions[ETH]
    journal = Journal(url)
    assert journal.schema_version == 10
    assert [e["symbol"] for e in journal.events(symbol=ETH)] == [ETH, ETH]
    assert [e["kind"] for e in journal.events(kind=["untracked"])] == ["untracked"]
    assert journal.events(account="other") == []
    assert len(journal.events(limit=1)) == 1 and journal.events(limit=1)[0]["kind"] == "untracked"
    t0 = pm.events[0]["time"]
    assert len(journal.events(since=t0)) == 3
    assert journal.events(until=t0) == []
    assert len(journal.events(until=t0 + timedelta(days=1))) == 3
    frame = journal.events().to_pandas()
    assert list(frame["kind"]) == ["added", "added", "untracked"]
    positions = journal.open_positions().to_pandas()
    assert list(positions["symbol"]) == [BTC] and positions["side"][0] == "long"
    with pytest.raises(TypeError, match="since must be a datetime"):
        journal.events(since="yesterday")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="limit must be an int"):
        journal.events(limit=1.5)  # type: ignore[arg-type]
    for limit in (-1, 2**63):  # the bound is named (it said ">= 0" for 2**63)
        with pytest.raises(ValueError, match=r"limit must be an int from 0 to 2\*\*62, got"):
            journal.events(limit=limit)
    journal.close()
    with pytest.raises(ValueError, match="closed"):
        journal.events()


def test_a_snapshot_reads_one_committed_state(url: str) -> None:
    pm = PositionManager(NO_CLIENT, journal=url, account="snap")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    with Journal(url) as journal:
        with journal.snapshot() as same:
            assert same is journal
            events = journal.events(account="snap")
            # A manager commits a close and an open between the two reads ...
            del pm.positions[BTC]
            pm.positions[ETH] = Position(ETH, "long", 10, 1, 10, 9, 11)
            # ... and the snapshot sees neither: the book and the events agree.
            assert [p["symbol"] for p in journal.open_positions("snap")] == [BTC]
            assert journal.events(account="snap") == events
            assert [a["last_seq"] for a in journal.accounts()] == [len(events)]
            with pytest.raises(ValueError, match="already open"):
                with journal.snapshot():
                    pass
        # After the block every query reads the journal as it is now.
        assert [p["symbol"] for p in journal.open_positions("snap")] == [ETH]
        assert len(journal.events(account="snap")) == len(events) + 2
        # A block left by an exception ends its snapshot too.
        with pytest.raises(KeyError):
            with journal.snapshot():
                raise KeyError("x")
        pm.positions[SOL] = Position(SOL, "short", 20, 1, 10, 21, 19)
        assert [p["symbol"] for p in journal.open_positions("snap")] == [ETH, SOL]
        # Closing the journal inside the block ends the snapshot; the block's own exception
        # is the one that leaves it.
        with pytest.raises(KeyError, match="inside"):
            with journal.snapshot():
                journal.close()
                raise KeyError("inside")


def test_load_state_migrates_a_state_file_into_an_empty_journal(tmp_path: Path) -> None:
    url = str(tmp_path / "j.db")
    old = PositionManager(NO_CLIENT)
    old.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    old.positions[BTC].strategy = "grid"
    old.save_state(tmp_path / "state.json")
    pm = PositionManager(NO_CLIENT, journal=url)
    assert pm.load_state(tmp_path / "state.json") == 1
    again = PositionManager(NO_CLIENT, journal=url)
    assert again.positions[BTC].strategy == "grid"
    with pytest.raises(ValueError, match="needs an empty manager"):
        again.load_state(tmp_path / "state.json")


def test_a_state_files_tombstone_and_close_are_journaled_by_the_load(
    url: str, tmp_path: Path
) -> None:
    # A bot moving from a state file to a journal. The file remembers a position the bot's
    # failed reads untracked (ETH) and a close its client answered True without sending (BTC).
    # The load journals both at once: a restart from the journal before either's next event
    # still finds both positions as they were, not as new imports.
    paper = PaperExchange(seed=1, volatility=0.0)
    client = BotLikeClient(paper)
    pm = bots_manager(client)
    assert pm.open_position(ETH, "BUY", 2, 10, 0.05) is True
    pm.positions[ETH].strategy = "grid"
    assert list(pm.update_positions()) == []  # listed: what identifies it on the venue
    cycle_on_failed_reads(pm, paper)
    assert not pm.has_position(ETH)
    assert pm.open_position(BTC, "BUY", 3, 10, 0.05) is True
    with_breakout_targets(pm, BTC)
    client.close_reread_fails_next()
    assert pm.close_position(BTC, "shutdown") is not None  # answered True, never sent
    assert paper.position(BTC) is not None and paper.position(ETH) is not None
    path = tmp_path / "state.json"
    assert pm.save_state(path) == 0

    moved = holding_manager(client, url, 0.0)
    assert moved.load_state(path) == 0
    with Journal(url) as journal:
        [tomb] = journal.tombstones("h")
        [closing] = journal.closing_positions("h")
    assert (tomb["symbol"], tomb["attributes"], tomb["listed"]["contracts"]) == (
        ETH,
        {"strategy": "grid"},
        2.0,
    )
    assert (closing["symbol"], closing["attributes"]) == (BTC, {"strategy": "breakout"})
    assert (closing["stop_loss"], closing["take_profit"]) == (80_000.0, 120_000.0)
    del moved

    again = holding_manager(client, url, 0.0)
    assert again.sync_existing_positions() == 2
    assert [(e["kind"], e["symbol"]) for e in again.events] == [
        ("restored", ETH),
        ("close_unconfirmed", BTC),
    ]
    assert again.positions[ETH].strategy == "grid"
    assert_as_it_was(again.positions[BTC])
    assert journal_keys(url, "h") == [] and journal_keys(url, "h", "pmrs_tombstones") == []
    assert client.calls["create_market_order"] == 2, "the two opens, nothing sent again"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"journal": 3}, TypeError, "journal must be a str"),
        ({"journal": "mysql://db/x"}, ValueError, 'scheme "mysql" is not supported'),
        ({"journal": "sqlite://x.db"}, ValueError, "sqlite:///relative/path"),
        ({"journal": ""}, ValueError, "journal must be"),
        ({"journal": "postgresql://h:notaport/db"}, ValueError, "not a valid PostgreSQL URL"),
        ({"journal": "postgresql://h/db?sslmode=strict"}, ValueError, 'got "strict"'),
        ({"account": "a"}, ValueError, "account needs journal="),
        ({"journal_sync": "full"}, ValueError, "journal_sync needs journal="),
        ({"journal": "J", "account": ""}, ValueError, "account must be a non-empty name"),
        ({"journal": "J", "account": 5}, TypeError, "account must be a str, got 5"),
        ({"journal": "J", "account": "a\nb"}, ValueError, "control characters"),
        ({"journal": "J", "journal_sync": "fast"}, ValueError, "'full', 'normal' or 'off'"),
        ({"journal": "J", "journal_sync": 1}, TypeError, "journal_sync must be"),
    ],
)
def test_bad_journal_arguments_name_the_argument(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    if kwargs.get("journal") == "J":
        kwargs["journal"] = str(tmp_path / "j.db")
    with pytest.raises(error, match=match):
        PositionManager(NO_CLIENT, **kwargs)


TLS_FILES_REFUSED = """
import os, sys
from position_manager_rs import Journal, PositionManager
tmp = {tmp!r}
key, cert, big = tmp + "/key.pem", tmp + "/cert.pem", tmp + "/big.pem"
for path, size in ((key, 1 << 40), (big, (16 << 20) + 1)):
    with open(path, "wb") as f:
        f.truncate(size)  # sparse: no disk used
with open(cert, "w") as f:
    f.write("not a certificate")
small_key = tmp + "/small.key"
with open(small_key, "w") as f:
    f.write("not a key")
os.chmod(key, 0o600)
os.chmod(small_key, 0o600)
base = "postgresql://u@127.0.0.1:1/db?"
for query in (
    "sslmode=verify-full&sslrootcert=/dev/zero",
    "sslmode=verify-ca&sslrootcert=" + big,
    f"sslmode=require&sslcert=/dev/zero&sslkey={{small_key}}",
    f"sslmode=require&sslcert={{big}}&sslkey={{small_key}}",
    f"sslmode=require&sslcert={{cert}}&sslkey={{key}}",
):
    for make in (Journal, lambda url: PositionManager(object(), journal=url)):
        try:
            make(base + query)
            print("accepted", query)
        except ValueError as e:
            print(type(e).__name__, e)
"""


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero and sparse files")
def test_tls_files_that_are_not_regular_or_too_large_are_refused_by_name(tmp_path: Path) -> None:
    """sslrootcert, sslcert and sslkey name a regular file of at most 16 MiB: /dev/zero (endless)
    and sparse files just above the limit are refused before they are read, naming the option
    and the file. Before, /dev/zero was read until the process aborted (exit 134)."""
    out = run_memory_limited(TLS_FILES_REFUSED.format(tmp=str(tmp_path)))
    big, key = tmp_path / "big.pem", tmp_path / "key.pem"
    too_large = "bytes, more than the 16777216 a certificate or key file may have"
    expected = [
        "journal TLS: sslrootcert /dev/zero is not a regular file",
        f"journal TLS: sslrootcert {big} is 16777217 {too_large}",
        "journal TLS: sslcert /dev/zero is not a regular file",
        f"journal TLS: sslcert {big} is 16777217 {too_large}",
        f"journal TLS: sslkey {key} is 1099511627776 {too_large}",
    ]
    lines = out.splitlines()
    assert len(lines) == 2 * len(expected), out
    for i, want in enumerate(expected):
        for line in lines[2 * i : 2 * i + 2]:
            assert line.startswith("ValueError ") and want in line, (want, line)


SERVICE_FILE_REFUSED = """
import sys
from position_manager_rs import Journal
try:
    Journal("postgresql://bot@127.0.0.1:1/db?service=x")
    print("accepted")
except ValueError as e:
    print(type(e).__name__, e)
"""


def test_a_service_file_that_is_a_fifo_or_too_large_is_refused_by_name(tmp_path: Path) -> None:
    """A service file that is a FIFO held the constructor for ever, and one of any size was read
    whole (found by an audit on 2026-12-07): refused at once, naming the file (each run in a
    child with a timeout, so a hang fails rather than holds the test)."""
    fifo = tmp_path / "services"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate((16 << 20) + 1)  # sparse: no disk used
    for path, why in (
        (fifo, "it is not a regular file"),
        (big, "it is 16777217 bytes, more than the 16777216 a service file may have"),
    ):
        env = {**os.environ, "PGSERVICEFILE": str(path)}
        done = subprocess.run(
            [sys.executable, "-c", SERVICE_FILE_REFUSED],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.stdout.strip() == (
            f"ValueError journal: cannot read the service file {path}: {why}"
        ), (done.stdout, done.stderr)


def test_a_journal_over_verified_tls(tmp_path: Path) -> None:
    """A DATABASE_URL with libpq's TLS options works as psql would take it: the test server's
    certificate names localhost and is signed by the authority PMRS_TEST_POSTGRES_CA names."""
    ca = postgres_ca()
    base = journal_url("postgres", tmp_path, "tls").replace("127.0.0.1", "localhost", 1)
    url = f"{base}?sslmode=verify-full&sslrootcert={ca}"
    pm = PositionManager(NO_CLIENT, journal=url, account="tls")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    assert pm.journal_status["journal"] == url  # type: ignore[index]
    # The manager's own session (not psql's) is encrypted.
    sessions = psql(
        url,
        "SELECT count(*), bool_and(s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
        "WHERE a.datname = current_database() AND a.application_name = 'position-manager-rs'",
    )
    assert sessions == "1|t", sessions
    with Journal(url) as journal:
        assert [p["symbol"] for p in journal.open_positions("tls")] == [BTC]
    other = Path(ca).with_name("other-ca.pem")
    with pytest.raises(JournalError, match="UnknownIssuer"):
        PositionManager(NO_CLIENT, journal=f"{base}?sslmode=verify-ca&sslrootcert={other}")
    with pytest.raises(JournalError, match=r'not valid for name "127\.0\.0\.1"'):
        Journal(url.replace("localhost", "127.0.0.1", 1))


def test_a_journal_logging_in_with_a_client_certificate() -> None:
    """A server that admits a role by its client certificate only (``cert`` authentication):
    ``sslcert`` and ``sslkey`` as libpq takes them."""
    role, tls = client_certificate_role()
    verified = f"sslmode=verify-full&sslrootcert={tls / 'ca.pem'}"
    identity = f"sslcert={tls / 'client.crt'}&sslkey={tls / 'client.key'}"
    url = f"{role}?{verified}&{identity}"
    account = f"cert-{datetime.now().timestamp()}"
    pm = PositionManager(NO_CLIENT, journal=url, account=account)
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    # The manager's own session: the certificate's role, its name, encrypted.
    sessions = psql(
        url,
        "SELECT a.usename, s.client_dn, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s "
        "USING (pid) WHERE a.datname = current_database() "
        "AND a.application_name = 'position-manager-rs'",
    )
    assert sessions == "pmrs_cert|/CN=pmrs_cert|t", sessions
    with Journal(url) as journal:
        assert [p["symbol"] for p in journal.open_positions(account)] == [BTC]
    with pytest.raises(JournalError, match="requires a valid client certificate"):
        Journal(f"{role}?{verified}")
    with pytest.raises(ValueError, match=r"sslkey .* has no certificate to go with it"):
        PositionManager(NO_CLIENT, journal=f"{role}?sslkey={tls / 'client.key'}")
    with pytest.raises(ValueError, match="does not go with sslcert"):
        Journal(f"{role}?{verified}&sslcert={tls / 'client.crt'}&sslkey={tls / 'server.key'}")


# Opens a manager with the journal argv[1] (creating it if need be); prints "logged in" or the
# error, and logs warnings to stderr.
def test_an_encrypted_client_key_with_its_passphrase(tmp_path: Path) -> None:
    """A client key OpenSSL encrypted with a passphrase, given as ``sslpassword``: the manager
    logs in with it, and the passphrase is shown nowhere."""
    role, tls = client_certificate_role()
    key = tmp_path / "client.enc.key"
    encrypt = ["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:s3cret"]
    subprocess.run(
        [*encrypt, "-in", str(tls / "client.key"), "-out", str(key)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    key.chmod(0o600)
    url = (
        f"{role}?sslmode=verify-full&sslrootcert={tls / 'ca.pem'}"
        f"&sslcert={tls / 'client.crt'}&sslkey={key}&sslpassword=s3cret"
    )
    pm = PositionManager(NO_CLIENT, journal=url, account="encrypted")
    shown = pm.journal_status["journal"]  # type: ignore[index]
    assert "s3cret" not in shown and "sslpassword=***" in shown, shown
    with pytest.raises(ValueError, match="cannot be opened with the sslpassword given"):
        PositionManager(NO_CLIENT, journal=url.replace("s3cret", "wrong"), account="encrypted")
    with pytest.raises(ValueError, match="give its passphrase with sslpassword"):
        Journal(url.replace("&sslpassword=s3cret", ""))


_WHO_AM_I = """
import logging
import sys
from position_manager_rs import PositionManager
logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
try:
    PositionManager(object(), journal=sys.argv[1], account="whoami")
    print("logged in")
except Exception as e:
    print(type(e).__name__, e)
"""

#: What ``theirs`` asks by default: who psql logged in as, and where.
WHO_AND_WHERE = "SELECT current_user || ' ' || current_database()"


def ours(url: str, env: Mapping[str, str]) -> tuple[str, str]:
    """A manager with the journal ``url``, in a process of its own with the environment ``env``:
    what it printed ("logged in" or the error) and what it logged."""
    done = subprocess.run(
        [sys.executable, "-c", _WHO_AM_I, url],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr


def theirs(
    url: str, env: Mapping[str, str], sql: str = WHO_AND_WHERE
) -> subprocess.CompletedProcess[str]:
    """``psql`` (never asking for a password) running ``sql`` on ``url`` with the environment
    ``env``."""
    return subprocess.run(
        ["psql", url, "-w", "-qXAt", "-c", sql],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def without_pg_variables(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any ``PG*`` variable, ``HOME`` set to ``home``, and
    ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return {**env, "HOME": str(home), **extra}


def test_a_journal_finds_its_certificates_where_libpq_looks(tmp_path: Path) -> None:
    """With no ``sslrootcert``, ``sslcert`` or ``sslkey`` in the URL, the files libpq reads from
    ``~/.postgresql/`` are used (``root.crt``, ``postgresql.crt``, ``postgresql.key``), and a key
    others may read, or a certificate without its key, is refused — what ``psql`` does with the
    same home directory and URL (each run in a process of its own, with ``HOME`` set)."""
    role, tls = client_certificate_role()
    url = f"{role}?sslmode=verify-full"  # the system's store does not know the test authority
    home = tmp_path / "home"
    dot = home / ".postgresql"
    dot.mkdir(parents=True)
    (dot / "root.crt").write_bytes((tls / "ca.pem").read_bytes())
    (dot / "postgresql.crt").write_bytes((tls / "client.crt").read_bytes())
    key = dot / "postgresql.key"
    key.write_bytes((tls / "client.key").read_bytes())
    key.chmod(0o600)
    env = without_pg_variables(home)

    assert ours(url, env)[0] == "logged in"
    assert theirs(url, env).stdout.strip() == "pmrs_cert pmrs_cert"
    # Permissions: others may never read the key; its group may if root owns it (this test's
    # files are its user's; CI runs as root). Both decide alike, before connecting.
    for mode in (0o644, 0o604, 0o640, 0o660, 0o400, 0o600):
        key.chmod(mode)
        mine, psqls = ours(url, env)[0], theirs(url, env)
        if psqls.returncode == 0:
            assert mine == "logged in", (oct(mode), mine)
        else:
            assert "group or world access" in psqls.stderr, (oct(mode), psqls.stderr)
            assert mine.startswith("ValueError") and f"sslkey {key}" in mine, (oct(mode), mine)
            assert f"permissions {mode:04o}" in mine and "chmod 6" in mine, mine
    key.chmod(0o644)
    assert "group or world access" in theirs(url, env).stderr, "refused whoever owns it"
    key.chmod(0o600)
    # The certificate without its key.
    key.unlink()
    mine = ours(url, env)[0]
    assert mine.startswith("ValueError") and "needs its private key" in mine, mine
    assert "not private key file" in theirs(url, env).stderr
    # Without the certificate neither logs in (the key is never looked at).
    (dot / "postgresql.crt").unlink()
    assert "requires a valid client certificate" in ours(url, env)[0]
    assert "requires a valid client certificate" in theirs(url, env).stderr


def test_a_journal_finds_its_password_where_libpq_looks(tmp_path: Path) -> None:
    """A URL without a password (a role that needs one, ``PMRS_TEST_POSTGRES_PASSWORD``, with a
    ``:`` and a ``\\`` in it): ``PGPASSWORD``, else ``~/.pgpass`` (``PGPASSFILE`` elsewhere), as
    ``psql`` finds it — both run in processes with the same ``HOME`` and environment."""
    server, _ = postgres_base().rsplit("/", 1)
    url = server.replace("postgres@", "pmrs_pw@", 1) + "/pmrs_pw"
    password = os.environ.get("PMRS_TEST_POSTGRES_PASSWORD")
    assert password, "bash .ci/postgres start sets PMRS_TEST_POSTGRES_PASSWORD"
    home = tmp_path / "home"
    home.mkdir()
    pgpass = home / ".pgpass"
    env = without_pg_variables(home)

    # No password anywhere: both refused.
    assert "password" in ours(url, env)[0]
    assert "no password supplied" in theirs(url, env).stderr
    # PGPASSWORD.
    assert ours(url, {**env, "PGPASSWORD": password})[0] == "logged in"
    assert theirs(url, {**env, "PGPASSWORD": password}).stdout.strip() == "pmrs_pw pmrs_pw"
    # ~/.pgpass, escaped, private.
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    port = url.rsplit(":", 1)[1].split("/")[0]
    pgpass.write_text(f"127.0.0.1:{port}:pmrs_pw:pmrs_pw:{escaped}\n")
    pgpass.chmod(0o600)
    assert ours(url, env) == ("logged in", "")
    assert theirs(url, env).stdout.strip() == "pmrs_pw pmrs_pw"
    # PGPASSWORD comes before the file.
    assert "password authentication failed" in ours(url, {**env, "PGPASSWORD": "wrong"})[0]
    assert "password authentication failed" in theirs(url, {**env, "PGPASSWORD": "wrong"}).stderr
    # PGPASSFILE names another file.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("*:*:*:*:wrong\n")
    elsewhere.chmod(0o600)
    assert "password authentication failed" in ours(url, {**env, "PGPASSFILE": str(elsewhere)})[0]
    # Others may read it: not used, and the refusal says so (nothing is logged).
    pgpass.chmod(0o644)
    said, logged = ours(url, env)
    assert said.startswith("JournalError") and "password missing" in said, said
    assert f"the password file {pgpass} was not used" in said, said
    assert "permissions 0644; make it 0600" in said and logged == "", (said, logged)
    psqls = theirs(url, env)
    assert "has group or world access" in psqls.stderr and "no password supplied" in psqls.stderr


def test_a_journal_completes_its_url_from_the_environment_as_libpq_does(tmp_path: Path) -> None:
    """``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGDATABASE`` and the ``PGSSL*`` variables fill in
    what the URL leaves out, and a URL with no host uses the default Unix socket: the package
    and ``psql`` run side by side in processes with the same environment and URL."""
    base = postgres_base()
    port = base.rsplit(":", 1)[1].split("/")[0]
    ca = Path(postgres_ca())
    socket_dir = os.environ.get("PMRS_TEST_POSTGRES_DIR")
    assert socket_dir, "bash .ci/postgres start sets PMRS_TEST_POSTGRES_DIR"
    clean = without_pg_variables(tmp_path)  # no ~/.pgpass, no ~/.postgresql

    def both(url: str, **env: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        full = {**clean, **env}
        return ours(url, full)[0], theirs(url, full)

    server = {"PGPORT": port, "PGUSER": "postgres", "PGDATABASE": "pmrs_test"}
    # Everything from the environment: the socket directory, port, user and database.
    mine, psqls = both("postgresql://", PGHOST=socket_dir, **server)
    assert mine == "logged in", mine
    assert psqls.stdout.strip() == "postgres pmrs_test", psqls.stderr
    # What the URL gives wins: a database that does not exist, named in the URL.
    mine, psqls = both("postgresql:///pmrs_none", PGHOST=socket_dir, **server)
    assert 'database "pmrs_none" does not exist' in mine, mine
    assert 'database "pmrs_none" does not exist' in psqls.stderr, psqls.stderr
    # TLS from the environment: verified for the name localhost, refused for 127.0.0.1.
    tls = {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(ca), **server}
    mine, psqls = both("postgresql://", PGHOST="localhost", **tls)
    assert mine == "logged in", mine
    assert psqls.returncode == 0, psqls.stderr
    mine, psqls = both("postgresql://", PGHOST="127.0.0.1", **tls)
    assert "certificate not valid for name" in mine, mine
    assert psqls.returncode != 0 and "127.0.0.1" in psqls.stderr, psqls.stderr
    mine, psqls = both("postgresql://?sslmode=disable", PGHOST="127.0.0.1", **tls)
    assert mine == "logged in" and psqls.returncode == 0, (mine, psqls.stderr)
    # An authority that signed nothing: both refuse the chain.
    other = {**tls, "PGSSLMODE": "verify-ca", "PGSSLROOTCERT": str(ca.parent / "other-ca.pem")}
    mine, psqls = both("postgresql://", PGHOST="localhost", **other)
    assert "UnknownIssuer" in mine, mine
    assert psqls.returncode != 0 and "certificate verify failed" in psqls.stderr, psqls.stderr
    # A variable libpq refuses is named.
    mine, _ = both("postgresql://", PGHOST="localhost", **{**server, "PGSSLMODE": "strict"})
    assert mine.startswith("ValueError") and "PGSSLMODE" in mine and "strict" in mine, mine
    # No host anywhere: the default Unix socket directory, /var/run/postgresql if it holds the
    # server's socket, else /run/postgresql (psql's own build looks in one directory only, so
    # only the package is run here). Never /tmp, where any local user may put a socket: one
    # there was sent the password (found by an audit on 2026-12-07); named, it is used.
    link = Path("/tmp") / f".s.PGSQL.{port}"
    assert not link.exists(), link
    url = f"postgresql:///pmrs_test?port={port}&user=postgres"
    mine, _ = both(url)
    assert "the server's socket was looked for in /var/run/postgresql" in mine, mine
    link.symlink_to(Path(socket_dir) / f".s.PGSQL.{port}")
    try:
        mine, _ = both(url)
        assert "the server's socket was looked for in /var/run/postgresql" in mine, mine
        mine, _ = both(f"{url}&host=%2Ftmp")
        assert mine == "logged in", mine
    finally:
        link.unlink()


def test_a_journal_url_naming_a_service_as_libpq_reads_it(tmp_path: Path) -> None:
    """``service=NAME`` (or ``PGSERVICE``) takes the options the URL leaves out from the service
    file (``PGSERVICEFILE`` here), before the environment: the package and ``psql`` side by
    side, with the same file, environment and URL."""
    base = postgres_base()
    port = base.rsplit(":", 1)[1].split("/")[0]
    socket_dir = os.environ.get("PMRS_TEST_POSTGRES_DIR")
    assert socket_dir, "bash .ci/postgres start sets PMRS_TEST_POSTGRES_DIR"
    services = tmp_path / "services.conf"
    services.write_text(
        "# the test server\n"
        f"[pmrs]\nhost={socket_dir}\nport={port}\nuser=postgres\ndbname=pmrs_test\n\n"
        "[nowhere]\nhost=127.0.0.1\nport=1\n"
    )
    env = without_pg_variables(tmp_path, PGSERVICEFILE=str(services), PGSYSCONFDIR=str(tmp_path))

    def both(url: str, **extra: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        full = {**env, **extra}
        return ours(url, full)[0], theirs(url, full)

    for url, extra in [
        ("postgresql://?service=pmrs", {}),
        ("postgresql://", {"PGSERVICE": "pmrs"}),
        # The service comes before the environment.
        ("postgresql://?service=pmrs", {"PGDATABASE": "pmrs_none", "PGHOST": "127.0.0.1"}),
    ]:
        mine, psqls = both(url, **extra)
        assert mine == "logged in", (url, extra, mine)
        assert psqls.stdout.strip() == "postgres pmrs_test", (url, extra, psqls.stderr)
    # The URL comes before the service.
    mine, psqls = both("postgresql:///pmrs_none?service=pmrs")
    assert 'database "pmrs_none" does not exist' in mine, mine
    assert 'database "pmrs_none" does not exist' in psqls.stderr, psqls.stderr
    # A service no file defines: both refuse, naming it.
    mine, psqls = both("postgresql://?service=absent")
    assert mine.startswith("ValueError") and '"absent" is defined in no service file' in mine, mine
    assert 'definition of service "absent" not found' in psqls.stderr, psqls.stderr


def test_passwords_never_reach_messages_or_the_status(tmp_path: Path) -> None:
    """libpq takes a password in the user info or as the option ``password``: neither is shown
    (the test server trusts loopback, so the password given is simply not needed)."""
    base = journal_url("postgres", tmp_path, "secret")
    url = base.replace("postgres@", "postgres:hunter2@", 1) + "?password=s3cr3t&connect_timeout=5"
    assert "hunter2@" in url
    pm = PositionManager(NO_CLIENT, journal=url, account="secret")
    shown = pm.journal_status["journal"]  # type: ignore[index]
    assert "hunter2" not in shown and "s3cr3t" not in shown, shown
    assert "postgres:***@" in shown and "password=***" in shown, shown
    with Journal(url) as journal:
        assert "hunter2" not in repr(journal) and "s3cr3t" not in repr(journal)
    with pytest.raises(JournalError) as refused:
        PositionManager(
            NO_CLIENT, journal="postgresql://bot:hunter2@127.0.0.1:1/db?password=s3cr3t"
        )
    message = str(refused.value)
    assert "cannot connect" in message and "hunter2" not in message and "s3cr3t" not in message


RESERVED_IN_USER_INFO = [
    # The postgres crate took everything before the first '@' as the user info: the password
    # "ab/cd?ef" was used, and every message showed it (found by an audit on 2026-12-07).
    ("postgresql://bot:ab/cd?ef@127.0.0.1:1/trading", "ab/cd?ef", "'/' as %2F"),
    ("postgresql://bot:abc/def@127.0.0.1:1/trading", "abc/def", "'/' as %2F"),
    ("postgresql://bot:abc?def@127.0.0.1:1/trading", "abc?def", "'?' as %3F"),
    ("postgresql://bot:SEKRIT1#x@127.0.0.1:1/db", "SEKRIT1", "'#' as %23"),
    ("postgresql://bot:SEK@RIT1@127.0.0.1:1/db", "RIT1", "as %40"),
    # A stray '?' made the password part of sslmode's value, which its error quoted.
    ("postgresql://bot@127.0.0.1:1/db?sslmode=disable?password=SEKRIT1", "SEKRIT1", "'&'"),
]


@pytest.mark.parametrize(("url", "secret", "hint"), RESERVED_IN_USER_INFO)
def test_a_url_with_unencoded_reserved_characters_is_refused_without_its_password(
    url: str, secret: str, hint: str
) -> None:
    for make in (Journal, lambda u: PositionManager(NO_CLIENT, journal=u)):
        with pytest.raises(ValueError) as refused:
            make(url)
        message = str(refused.value)
        assert hint in message and secret not in message, message


def test_no_refusal_quotes_a_password_given_as_an_option_in_another_case() -> None:
    # "unknown option `Password`, got ...?Password=SEKRIT1" (found by an audit on 2026-12-07).
    with pytest.raises(ValueError, match="unknown option") as refused:
        Journal("postgresql://bot@127.0.0.1:1/db?Password=SEKRIT1")
    assert "SEKRIT1" not in str(refused.value) and "Password=***" in str(refused.value)


def test_a_percent_encoded_password_logs_in_and_is_never_shown() -> None:
    """The test role ``pmrs_pw`` logs in with its password percent-encoded whole in the user
    info (every byte, '/' and '?' would be so too), and no status or repr shows it."""
    server, _ = postgres_base().rsplit("/", 1)
    password = os.environ.get("PMRS_TEST_POSTGRES_PASSWORD")
    assert password, "bash .ci/postgres start sets PMRS_TEST_POSTGRES_PASSWORD"
    encoded = "".join(f"%{b:02X}" for b in password.encode())
    url = server.replace("postgres@", f"pmrs_pw:{encoded}@", 1) + "/pmrs_pw"
    pm = PositionManager(NO_CLIENT, journal=url, account="encoded")
    status = pm.journal_status
    assert status is not None and "pmrs_pw:***@" in status["journal"], status
    with Journal(url) as journal:
        assert journal.accounts()[0]["account"] == "encoded"
        assert encoded not in repr(journal) and password not in repr(journal)
    assert encoded not in repr(pm) and password not in repr(pm)


def test_a_libpq_keyword_value_string_is_refused_not_made_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``journal="host=db.example.com user=bot password=hunter2 dbname=trading"`` created an
    SQLite file of that name in the working directory, and ``journal_status`` showed it,
    password and all (found by an audit on 2026-12-07)."""
    monkeypatch.chdir(tmp_path)
    dsn = "host=db.example.com user=bot password=hunter2 dbname=trading sslmode=require"
    for make, name in (
        (lambda: PositionManager(NO_CLIENT, journal=dsn), "journal"),
        (lambda: Journal(dsn), "url"),
    ):
        with pytest.raises(ValueError) as refused:
            make()
        message = str(refused.value)
        assert message.startswith(f"{name} is a libpq keyword/value connection string"), message
        assert "postgresql://" in message and "hunter2" not in message, message
    assert list(tmp_path.iterdir()) == []
    # A file name that only looks like one pair is still a file name given as ./NAME.
    pm = PositionManager(NO_CLIENT, journal="./dbname=x.db", account="a")
    assert pm.journal_checkpoint() is True
    assert (tmp_path / "dbname=x.db").is_file()


def test_a_journal_that_cannot_be_written_is_an_error_at_construction(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot open the journal"):
        PositionManager(NO_CLIENT, journal=str(tmp_path / "no" / "such" / "dir" / "j.db"))
    (tmp_path / "text.db").write_text("not a database at all, just some text" * 100)
    with pytest.raises(JournalError):
        PositionManager(NO_CLIENT, journal=tmp_path / "text.db")
    with pytest.raises(JournalError, match="cannot connect"):
        PositionManager(NO_CLIENT, journal="postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(JournalError, match="not a position-manager-rs journal"):
        sqlite3.connect(tmp_path / "plain.db").executescript("CREATE TABLE t (x)")
        Journal(tmp_path / "plain.db")
    with pytest.raises(JournalError, match="does not exist"):
        Journal(tmp_path / "missing.db")
    assert isinstance(JournalError("x"), OSError)


def test_a_newer_schema_is_refused(url: str) -> None:
    PositionManager(NO_CLIENT, journal=url)
    with Journal(url) as journal:
        newer = journal.schema_version + 1
    run_sql(
        url,
        "INSERT INTO pmrs_migrations (version, description, applied_at) "
        f"VALUES ({newer}, 'x', 'y')",
    )
    with pytest.raises(JournalError, match=f"version {newer}, newer"):
        PositionManager(NO_CLIENT, journal=url)
    with pytest.raises(JournalError, match="newer"):
        Journal(url)


def test_sqlite_urls_and_wal_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pm = PositionManager(NO_CLIENT, journal="sqlite:///rel.db", account="x")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    assert (tmp_path / "rel.db").exists()
    assert sqlite_in_child(tmp_path / "rel.db", "PRAGMA journal_mode") == [["wal"]]
    assert len(Journal(f"sqlite:///{tmp_path}/rel.db").events()) == 1
    assert Journal("rel.db").accounts()[0]["account"] == "x"


def test_a_journals_url_opens_it_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # url (and repr) read sqlite:/tmp/..., a form Journal() refused (found by an audit): it is
    # now sqlite:/// and the path, which it accepts (as journal_status["journal"]).
    monkeypatch.chdir(tmp_path)
    pm = PositionManager(NO_CLIENT, journal=str(tmp_path / "j.db"), account="x")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    absolute = f"sqlite:///{tmp_path}/j.db"
    assert absolute.startswith("sqlite:////")
    assert pm.journal_status["journal"] == absolute  # type: ignore[index]
    specs: list[tuple[str | Path, str]] = [
        (str(tmp_path / "j.db"), absolute),
        (tmp_path / "j.db", absolute),
        (absolute, absolute),
        ("j.db", "sqlite:///j.db"),
        ("sqlite:///j.db", "sqlite:///j.db"),
    ]
    for spec, url in specs:
        with Journal(spec) as journal:
            assert journal.url == url
            assert repr(journal) == f"Journal({url!r})"
            with Journal(journal.url) as again:
                assert again.accounts()[0]["account"] == "x"


def test_no_kind_selects_no_event(tmp_path: Path) -> None:
    # events(kind=[]) returned every event (found by an audit): no kind asked, none selected.
    url = str(tmp_path / "j.db")
    pm = PositionManager(NO_CLIENT, journal=url, account="x")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    del pm.positions[BTC]
    with Journal(url) as journal:
        kinds = [e["kind"] for e in journal.events()]
        assert len(kinds) == 2
        assert [e["kind"] for e in journal.events(kind=kinds[0])] == kinds[:1]
        assert journal.events(kind=[]) == []
        assert journal.events(kind=()) == []
        assert journal.events(kind=iter([]), account="x") == []


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("", '^url must be a file path, sqlite:///path or postgresql://..., got ""$'),
        ("sqlite://x.db", "^url must spell an SQLite file sqlite:///relative/path"),
        ("mysql://db/x", '^url scheme "mysql" is not supported'),
        ("postgresql://h:notaport/db", "^url is not a valid PostgreSQL URL"),
    ],
)
def test_a_bad_journal_url_names_the_argument_url(url: str, match: str) -> None:
    # Journal("") said "journal must be ...": the parameter is url (found by an audit).
    with pytest.raises(ValueError, match=match):
        Journal(url)


@pytest.mark.skipif(sys.platform == "win32", reason="non-UTF-8 file names are a POSIX matter")
def test_a_non_utf8_str_journal_path_is_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file name that is not UTF-8, as the ``str`` ``os.listdir`` gives it (surrogate
    escapes), is a journal path as the same name as ``bytes`` or ``Path`` is; after
    ``sqlite:///`` too. What a path or a URL cannot be is still refused, naming the argument."""
    raw = os.fsencode(tmp_path) + b"/k\xfe.db"
    name = os.fsdecode(raw)
    pm = PositionManager(NO_CLIENT, journal=name, account="x")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    status = pm.journal_status
    assert status is not None and status["journal"] == f"sqlite:///{tmp_path}/k\ufffd.db"
    del pm
    assert os.path.exists(raw) and sorted(os.listdir(tmp_path))[0] == "k\udcfe.db"
    assert Journal(Path(name)).accounts()[0]["account"] == "x"
    assert len(Journal(name).events()) == 1
    monkeypatch.chdir(tmp_path)
    assert len(Journal("sqlite:///" + os.fsdecode(b"k\xfe.db")).events()) == 1
    # Refused as the same text in UTF-8 would be.
    with pytest.raises(ValueError, match="journal must not contain a NUL byte"):
        PositionManager(NO_CLIENT, journal=name + "\0")
    with pytest.raises(ValueError, match="sqlite:///relative/path"):
        PositionManager(NO_CLIENT, journal="sqlite:" + name)
    with pytest.raises(ValueError, match='scheme "mysql" is not supported'):
        PositionManager(NO_CLIENT, journal="mysql://h/" + os.fsdecode(b"\xfe"))
    # No file name has a lone surrogate outside the escapes.
    with pytest.raises(ValueError, match=r"journal must be a file path or a URL, got '/x\\ud800'"):
        PositionManager(NO_CLIENT, journal="/x\ud800")
    with pytest.raises(ValueError, match="url must be a file path or a URL"):
        Journal("/x\ud800")
    # One database, under the name as given (no second one under a lossy name).
    assert all(n.startswith("k\udcfe.db") for n in os.listdir(tmp_path)), os.listdir(tmp_path)


def test_journal_times_are_the_event_times(tmp_path: Path) -> None:
    url = str(tmp_path / "j.db")
    pm = PositionManager(NO_CLIENT, journal=url)
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    (row,) = Journal(url).events()
    assert isinstance(row["time"], datetime) and row["time"] == pm.events[0]["time"]


def listing_client(*entries: dict[str, Any]) -> Mock:
    client = Mock()
    client.get_open_positions.return_value = list(entries)
    client.get_ticker.return_value = {"last": 100.0}
    client.get_ohlcv.return_value = []
    return client


def test_a_tombstone_survives_a_restart_and_the_same_position_comes_back(url: str) -> None:
    entry = {"symbol": BTC, "side": "long", "contracts": 1.0, "entryPrice": 100.0, "leverage": 10}
    client = listing_client(entry)
    pm = PositionManager(client, journal=url)
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    pm.positions[BTC].strategy = "grid"
    client.get_open_positions.return_value = []  # closed outside the bot: a tombstone
    list(pm.update_positions())
    assert [e["kind"] for e in pm.events] == ["added", "removed"]
    del pm

    client.get_open_positions.return_value = [entry]  # the very same position, listed again
    again = PositionManager(client, journal=url)
    assert list(again.positions) == []
    list(again.update_positions())
    assert [(e["kind"], e["reason"]) for e in again.events][-1] == ("restored", "reported_again")
    assert again.positions[BTC].strategy == "grid"
    assert [r["symbol"] for r in Journal(url).open_positions()] == [BTC]


def test_a_restored_book_is_reconciled_as_usual(url: str) -> None:
    eth = {"symbol": ETH, "side": "long", "contracts": 1.0, "entryPrice": 100.0, "leverage": 10}
    client = listing_client(eth)
    pm = PositionManager(client, journal=url, account="r")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    pm.positions[ETH] = Position(ETH, "long", 100, 1, 10, 95, 110)
    del pm
    # While the bot was down, BTC was closed on the exchange.
    again = PositionManager(client, journal=url, account="r")
    assert list(again.positions) == [BTC, ETH]
    list(again.update_positions())
    assert list(again.positions) == [ETH]
    assert (again.events[-1]["kind"], again.events[-1]["symbol"]) == ("removed", BTC)
    closed = Journal(url).closed_positions(account="r")
    assert [(c["symbol"], c["kind"]) for c in closed] == [(BTC, "removed")]
    assert [r["symbol"] for r in Journal(url).open_positions("r")] == [ETH]


def hold_rows(url: str, account: str) -> list[tuple[str, datetime]]:
    """The journal's re-open holds of ``account``: (key, when the hold started)."""
    with Journal(url) as journal:
        return [(h["symbol"], h["held_since"]) for h in journal.reopen_holds(account)]


def holding_manager(client: BotLikeClient, url: str, hold: float) -> PositionManager:
    """A :func:`bots_manager` of account ``h`` journaling to ``url``, holding re-opens ``hold``
    s."""
    return bots_manager(client, hold, journal=url, account="h")


def test_a_reopen_hold_survives_a_restart_of_the_bot(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The bot's own client answers [] for a failed read: two in a row untrack a live position
    # and hold its re-open. The bot then dies and restarts while the reads still fail; without
    # the journaled hold the restarted manager's open would go on top of the live position.
    paper = PaperExchange(seed=1, volatility=0.0)
    client = BotLikeClient(paper)

    def manager() -> PositionManager:
        return holding_manager(client, url, 300.0)

    pm = manager()
    assert pm.open_position(BTC, "BUY", 3, 10, 0.05) is True
    assert list(pm.update_positions()) == []  # listed once
    assert hold_rows(url, "h") == []
    cycle_on_failed_reads(pm, paper)
    assert not pm.has_position(BTC)
    [(key, started)] = hold_rows(url, "h")
    assert (key, started) == (BTC, paper.clock.now())
    del pm

    paper.clock.advance(200.0)
    paper.fail_next("get_open_positions", times=2)
    with caplog.at_level(logging.INFO, logger="TradingBot"):
        again = manager()
        assert again.open_position(BTC, "BUY", 3, 10, 0.05) is False
    messages = [r.getMessage() for r in caplog.records if r.name == "TradingBot"]
    assert (
        'Journal: restored 0 positions and 2 events of account "h"; 1 removed position(s) '
        f"remembered (restored if listed again); not opening again yet (reopen_hold_seconds): {BTC}"
    ) in messages
    assert any("not opening it again for 100.0 more seconds" in m for m in messages), messages
    assert client.calls["create_market_order"] == 1, "no second order after the restart"
    venue = paper.position(BTC)
    assert venue is not None and venue["contracts"] == 3.0, "held once, not twice"
    assert hold_rows(url, "h") == [(BTC, started)], "the hold kept its start"

    # The reads work again: the live list restores the position and ends the hold.
    paper.advance()
    assert list(again.update_positions()) == []
    assert again.has_position(BTC)
    assert hold_rows(url, "h") == []
    del again
    third = manager()
    assert third.has_position(BTC)
    assert third.open_position(BTC, "BUY", 3, 10, 0.05) is False, "tracked: a duplicate"
    assert client.calls["create_market_order"] == 1


def test_holds_over_or_not_kept_are_dropped_from_the_journal_at_restart(url: str) -> None:
    paper = PaperExchange(seed=1, volatility=0.0)
    client = BotLikeClient(paper)

    def opened_and_closed_by_hand(hold: float) -> list[str]:
        """Opens BTC under a manager holding for ``hold`` s, closes it on the venue and runs a
        cycle; returns the keys the journal then holds."""
        pm = holding_manager(client, url, hold)
        assert pm.open_position(BTC, "BUY", 3, 10, 0.05) is True
        assert list(pm.update_positions()) == []  # listed once
        assert paper.close_externally(BTC)
        assert list(pm.update_positions()) == []
        return [k for k, _ in hold_rows(url, "h")]

    assert opened_and_closed_by_hand(60.0) == [BTC]
    # Restarted without holds: the journal's hold is dropped (at once), the symbol opens, and
    # nothing more is written.
    assert opened_and_closed_by_hand(0.0) == []
    assert opened_and_closed_by_hand(60.0) == [BTC]
    # Restarted once the hold is over: dropped too, and the real close can be re-entered.
    paper.clock.advance(61.0)
    late = holding_manager(client, url, 60.0)
    assert hold_rows(url, "h") == []
    assert late.open_position(BTC, "BUY", 3, 10, 0.05) is True


def test_holds_a_failing_database_could_not_take_are_written_when_it_is_back(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    paper, _, pm = bot_with_btc(300.0, journal=url, account="h")
    run_sql(url, "ALTER TABLE pmrs_holds RENAME TO pmrs_holds_away")
    assert paper.close_externally(BTC)
    with caplog.at_level(logging.WARNING, logger="TradingBot"):
        # The holds are written first, when the book is already empty: that failure is logged
        # and has no position to hang an event on; the removal's failure carries the outage's
        # one event.
        assert list(pm.update_positions()) == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("Journal write failed" in m and "pmrs_holds" in m for m in errors), errors
    failures = [e for e in pm.events if e["kind"] == "journal_failed"]
    assert [(e["symbol"], "pmrs_holds" in e["reason"]) for e in failures] == [(BTC, True)]
    assert pm.journal_checkpoint() is False
    run_sql(url, "ALTER TABLE pmrs_holds_away RENAME TO pmrs_holds")
    assert pm.journal_checkpoint() is True
    assert [k for k, _ in hold_rows(url, "h")] == [BTC]
    written = Journal(url).events(account="h")
    assert [e["kind"] for e in written] == [e["kind"] for e in pm.events]
    assert [e["kind"] for e in pm.events] == ["opened", "removed", "journal_failed"]


def test_a_close_the_bots_client_never_sent_is_tracked_again_as_it_was_after_a_restart(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Shutdown with CLOSE_POSITIONS_ON_SHUTDOWN: the bot's client answers True for a close whose
    # re-read failed, without sending it. The close awaits a list to confirm it, but the bot
    # exits first; the restarted bot's sync must find the very same position (stops, targets,
    # attributes), not import a new one.
    paper, client, pm = bot_with_btc(0.0, journal=url, account="h")
    with_breakout_targets(pm, BTC)
    client.close_reread_fails_next()
    assert pm.close_position(BTC, "shutdown") is not None, "booked as closed"
    assert client.closes_without_order == 1 and paper.position(BTC) is not None
    assert not pm.has_position(BTC)
    assert Journal(url).open_positions("h") == []
    assert journal_keys(url, "h") == [BTC]
    del pm

    with caplog.at_level(logging.INFO, logger="TradingBot"):
        again = holding_manager(client, url, 0.0)
    assert (
        'Journal: restored 0 positions and 3 events of account "h"; 1 close(s) awaiting '
        "confirmation by the next position list"
    ) in [r.getMessage() for r in caplog.records]
    assert not again.has_position(BTC), "awaiting confirmation, not tracked"
    assert again.sync_existing_positions() == 1, "the one position, tracked again"
    assert_as_it_was(again.positions[BTC])
    assert [(e["kind"], e["reason"]) for e in again.events][-1] == (
        "close_unconfirmed",
        "still_listed",
    )
    assert [e["kind"] for e in again.events].count("imported") == 0
    assert journal_keys(url, "h") == [], "tracked again: the close is over"
    del again
    third = holding_manager(client, url, 0.0)
    assert third.positions[BTC].strategy == "breakout"


def test_a_confirmed_close_keeps_only_its_end_and_an_unconfirmed_one_is_confirmed_after_a_restart(
    url: str,
) -> None:
    paper, client, pm = bot_with_btc(0.0, journal=url, account="h")
    assert pm.open_position(ETH, "BUY", 3, 10, 0.05) is True
    assert pm.close_position(BTC, "manual") is not None  # sent: the venue closed it
    assert paper.position(BTC) is None
    assert list(pm.update_positions()) == []  # the list confirms BTC's close
    assert pm.close_position(ETH, "manual") is not None  # closed, not yet confirmed
    assert journal_keys(url, "h") == [ETH]
    del pm
    # Someone opens BTC by hand (same side) while the bot is down, the price having moved.
    paper.set_price(BTC, paper.price(BTC) * 1.02)
    paper.create_market_order(BTC, "buy", 2, 10)
    again = holding_manager(client, url, 0.0)
    assert again.sync_existing_positions() == 1
    # BTC's confirmed close left only the position it ended (a list lagging the close would
    # show that one): the hand-opened position, at another entry, is a new one.
    assert [(e["kind"], e["symbol"]) for e in again.events][-1] == ("imported", BTC)
    assert again.positions[BTC].amount == 2.0
    # ETH's close is confirmed by the first list after the restart: nothing comes back.
    assert not again.has_position(ETH)
    assert "close_unconfirmed" not in [e["kind"] for e in again.events]
    assert journal_keys(url, "h") == [], "confirmed after the restart"
    del again
    third = holding_manager(client, url, 0.0)
    assert list(third.positions) == [BTC]
    assert third.sync_existing_positions() == 0
    assert list(third.positions) == [BTC]


def paper_bot_closed_btc(
    url: str, lagging: int
) -> tuple[PaperExchange, PositionManager, Callable[[], PositionManager]]:
    """A manager over a ``PaperExchange`` (client order ids) journaling to account ``h`` of
    ``url`` that opened BTC (3 long), saw it listed and closed it (filled); the close's own read
    and the next ``lagging - 1`` lists show BTC as it was. Returns the venue, the manager and a
    maker of managers like it (a restart)."""
    paper = PaperExchange(seed=1, volatility=0.0)

    def manager() -> PositionManager:
        return PositionManager(
            paper, clock=paper.clock, ticker_retry_delays=(), journal=url, account="h"
        )

    pm = manager()
    assert pm.open_position(BTC, "BUY", 3, 10, 0.05) is True
    assert list(pm.update_positions()) == []
    paper.lag_positions_next(lagging)
    assert pm.close_position(BTC, "manual") is not None
    assert paper.position(BTC) is None, "the close filled"
    return paper, pm, manager


def test_a_confirmed_close_is_not_imported_again_from_a_lagging_list_after_a_restart(
    url: str,
) -> None:
    # The crash runs' defect (Bybit hedge seed 5 killed after answers): the manager's close of
    # BTC, sent under a client order id, filled; two empty answers confirmed it; the restarted
    # bot's first list lagged the close and still showed BTC. Earlier builds forgot a close so
    # confirmed, and the start-up sync imported BTC as a new position: one end journaled twice
    # once the lists caught up. The journal keeps the position the close ended (`own_end`), so
    # the lagging list is counted, not imported, and the next true list ends the count.
    # The close's own read of the list, then the restarted bot's first, show BTC as it was.
    paper, pm, manager = paper_bot_closed_btc(url, 2)
    paper.answer_empty_next(2)
    assert list(pm.update_positions()) == []
    with Journal(url) as journal:
        [tomb] = journal.tombstones("h")
    assert (tomb["symbol"], tomb["own_end"], tomb["amount"]) == (BTC, True, 3.0)
    del pm

    again = manager()
    assert again.sync_existing_positions() == 0, "the lagging list imports nothing"
    assert list(again.update_positions()) == []
    assert not again.has_position(BTC)
    assert [e["kind"] for e in again.events if e["symbol"] == BTC] == ["opened", "closed"]
    with Journal(url) as journal:
        assert [e["symbol"] for e in journal.closed_positions(account="h")] == [BTC]
        assert [t["own_end"] for t in journal.tombstones("h")] == [True]


def test_a_close_filled_in_full_stays_closed_over_lists_lagging_it_after_a_restart(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The crash run's Gate one-way seed 55: the manager's close of BTC, sent under a client
    # order id, filled; the bot died before any list confirmed it; the restarted bot's lists
    # lagged the close by more reads than `outcome_confirmations` (its start-up read having
    # failed). The journal keeps the close awaiting confirmation with its order id; the order
    # is looked up (filled in full), and lists showing the very position it closed lag it, however
    # many: earlier builds tracked it again after two and the bot's scale-out went to the flat
    # venue. The close's own read of the list, then the restarted bot's four, show BTC as it was.
    paper, pm, manager = paper_bot_closed_btc(url, 5)
    del pm

    with caplog.at_level(logging.WARNING, logger="TradingBot"):
        again = manager()
        for _ in range(4):
            assert list(again.update_positions()) == []
            assert not again.has_position(BTC)
            assert again.scale_out_position(BTC, 1) is None
    assert (
        f"The exchange still lists {BTC} exactly as it was before its close order, which the "
        "exchange reports filled in full; its list lags the fill, so the position stays closed"
    ) in caplog.messages
    assert list(again.update_positions()) == []  # the lists catch up: the close is confirmed
    assert [e["kind"] for e in again.events if e["symbol"] == BTC] == ["opened", "closed"]
    assert len(paper.calls_of("close_position")) == 1
    assert paper.calls_of("create_market_order")[1:] == [], "nothing sent after the close"
    with Journal(url) as journal:
        assert [e["symbol"] for e in journal.closed_positions(account="h")] == [BTC]


def breakout_btc_tombstone(url: str) -> dict[str, Any]:
    """The journal's one tombstone of account ``h``: BTC, with the bot's ``breakout`` attribute
    (:func:`with_breakout_targets`)."""
    with Journal(url) as journal:
        [tomb] = journal.tombstones("h")
    assert (tomb["symbol"], tomb["attributes"]) == (BTC, {"strategy": "breakout"})
    return tomb


def restarted_with_btc_restored(client: BotLikeClient, url: str) -> PositionManager:
    """The bot restarted on account ``h`` of ``url``: its start-up sync finds BTC, the journal's
    tombstone, and restores it as it was (not a new import)."""
    again = holding_manager(client, url, 0.0)
    assert again.sync_existing_positions() == 1
    assert_as_it_was(again.positions[BTC])
    return again


def test_a_close_confirmed_by_failed_reads_is_journaled_as_a_tombstone(url: str) -> None:
    # The bot's client answered True for a close it never sent, then [] twice: the close looks
    # confirmed, but an empty answer may be a failed read, so it is kept as a tombstone — in
    # the journal too, in the transaction that ends the close. The restarted bot's first list
    # finds the very same position: restored as it was, not imported.
    paper, client, pm = bot_with_btc(0.0, journal=url, account="h")
    with_breakout_targets(pm, BTC)
    client.close_reread_fails_next()
    assert pm.close_position(BTC, "shutdown") is not None
    assert journal_keys(url, "h") == [BTC]
    cycle_on_failed_reads(pm, paper)
    assert journal_keys(url, "h") == [], "the close is over"
    assert breakout_btc_tombstone(url)["stop_loss"] == 80_000.0
    del pm

    again = restarted_with_btc_restored(client, url)
    assert [e["kind"] for e in again.events][-1] == "restored"
    assert journal_keys(url, "h", "pmrs_tombstones") == []


def test_a_position_a_lost_order_closed_by_failed_reads_is_journaled_as_a_tombstone(
    url: str,
) -> None:
    # A scale-out's answer is lost and the lists read to settle it fail: the order is taken to
    # have closed the position, which is kept as a tombstone — in the journal too, in the
    # transaction of the close's event. The restarted bot's first list finds it, reduced.
    paper, client, pm = bot_with_btc(0.0, journal=url, account="h")
    with_breakout_targets(pm, BTC)
    lost_scale_out_on_failed_reads(pm, paper, BTC)
    assert not pm.has_position(BTC)
    assert journal_keys(url, "h") == []
    assert breakout_btc_tombstone(url)["amount"] == 3.0
    del pm

    again = restarted_with_btc_restored(client, url)
    assert again.positions[BTC].amount == 2.0
    assert [e["kind"] for e in again.events][-2:] == ["restored", "resized"]


def test_a_position_untracked_on_failed_reads_is_journaled_as_doubtful(url: str) -> None:
    # Two failed reads untrack a live position, journaled as a doubtful tombstone (empty answers
    # cannot tell a closed position from failed reads); a person adds to it while the bot is
    # down. The restarted bot's first list shows it larger: that position, restored as it was
    # and resized, not a new import.
    paper, client, pm = bot_with_btc(0.0, journal=url, account="h")
    with_breakout_targets(pm, BTC)
    cycle_on_failed_reads(pm, paper)
    assert not pm.has_position(BTC)
    tomb = breakout_btc_tombstone(url)
    assert (tomb["doubtful"], tomb["own_end"], tomb["amount"]) == (True, False, 3.0)
    del pm
    paper.create_market_order(BTC, "buy", 1, 10)  # on the venue's UI, not by the bot

    again = restarted_with_btc_restored(client, url)
    assert again.positions[BTC].amount == 4.0
    assert [e["kind"] for e in again.events][-2:] == ["restored", "resized"]


def test_a_doubtful_end_a_later_list_shows_real_is_journaled_so(url: str) -> None:
    # Failed reads untrack BTC and ETH (both doubtful); BTC was closed by hand meanwhile, and
    # the next list shows ETH and not BTC: BTC's end is real, its journal row says so, and
    # after a restart a larger BTC opened by hand is a new position, not BTC added to.
    paper, client, pm = bot_with_btc(0.0, journal=url, account="h")
    assert pm.open_position(ETH, "BUY", 2, 10, 0.05) is True
    assert list(pm.update_positions()) == []
    with_breakout_targets(pm, BTC)
    cycle_on_failed_reads(pm, paper)
    with Journal(url) as journal:
        doubtful = {t["symbol"]: t["doubtful"] for t in journal.tombstones("h")}
    assert doubtful == {BTC: True, ETH: True}
    assert paper.close_externally(BTC)
    assert list(pm.update_positions()) == []
    assert pm.has_position(ETH) and not pm.has_position(BTC)
    with Journal(url) as journal:
        [tomb] = journal.tombstones("h")
    assert (tomb["symbol"], tomb["doubtful"], tomb["own_end"]) == (BTC, False, False)
    del pm
    paper.create_market_order(BTC, "buy", 4, 10)  # on the venue's UI, not by the bot

    again = holding_manager(client, url, 0.0)
    assert again.sync_existing_positions() == 1
    assert again.positions[BTC].amount == 4.0
    assert again.positions[BTC].stop_loss != 80_000.0, "a new position's stops"
    assert [e["kind"] for e in again.events][-1] == "imported"


def test_the_reader_shows_closes_awaiting_confirmation_and_tombstones(url: str) -> None:
    paper, client, pm = bot_with_btc(0.0, journal=url, account="h")
    assert pm.open_position(ETH, "BUY", 2, 10, 0.05) is True
    assert list(pm.update_positions()) == []
    with_breakout_targets(pm, BTC)
    client.close_reread_fails_next()
    assert pm.close_position(BTC, "shutdown") is not None  # answered True, never sent
    assert paper.close_externally(ETH)
    assert list(pm.update_positions()) == []  # BTC still listed: tracked again; ETH removed
    assert pm.has_position(BTC) and not pm.has_position(ETH)
    client.close_reread_fails_next()
    assert pm.close_position(BTC, "shutdown") is not None
    closed = [e for e in pm.events if e["kind"] == "closed"][-1]
    removed = [e for e in pm.events if e["kind"] == "removed"][-1]

    with Journal(url) as journal:
        [closing] = journal.closing_positions("h")
        [tomb] = journal.tombstones(account="h")
        assert journal.closing_positions("other") == [] and journal.tombstones("other") == []
        assert [r["symbol"] for r in journal.closing_positions()] == [BTC]
        frame = journal.tombstones().to_pandas()
    assert (closing["account"], closing["symbol"], closing["side"], closing["amount"]) == (
        "h",
        BTC,
        "long",
        3.0,
    )
    assert (closing["stop_loss"], closing["take_profit"]) == (80_000.0, 120_000.0)
    assert closing["attributes"] == {"strategy": "breakout"}
    assert (closing["closed_seq"], closing["closed_at"]) == (closed["seq"], closed["time"])
    assert (tomb["symbol"], tomb["amount"], tomb["attributes"]) == (ETH, 2.0, {})
    assert (tomb["removed_seq"], tomb["removed_at"]) == (removed["seq"], removed["time"])
    assert list(frame["symbol"]) == [ETH]
    assert journal_keys(url, "h") == [BTC] and journal_keys(url, "h", "pmrs_tombstones") == [ETH]

    # A new ETH supersedes its tombstone, and the next list ends BTC's close (the venue still
    # lists it: tracked again): both queries are empty.
    assert pm.open_position(ETH, "BUY", 1, 10, 0.05) is True
    assert list(pm.update_positions()) == []
    assert pm.has_position(BTC)
    with Journal(url) as journal:
        assert journal.closing_positions("h") == []
        assert journal.tombstones("h") == []


def test_a_close_a_list_contradicted_is_not_a_closed_position(url: str) -> None:
    # The bot's client answers True for a close whose re-read failed, without sending it: the
    # manager records `closed` with its P/L, and a later list that still shows the very position
    # tracks it again (`close_unconfirmed`). The position's one real end is the later close.
    paper, client, pm = bot_with_btc(0.0, journal=url, account="h")
    assert pm.open_position(ETH, "BUY", 2, 10, 0.05) is True
    client.close_reread_fails_next()
    assert pm.close_position(BTC, "shutdown") is not None  # answered True, never sent
    for _ in range(3):
        if pm.has_position(BTC):
            break
        assert list(pm.update_positions()) == []
    assert pm.has_position(BTC), "tracked again"
    assert pm.close_position(ETH, "manual") is not None
    assert pm.close_position(BTC, "take_profit") is not None
    assert paper.position(BTC) is None and paper.position(ETH) is None
    assert [e["kind"] for e in pm.events if e["symbol"] == BTC][-3:] == [
        "closed",
        "close_unconfirmed",
        "closed",
    ]

    with Journal(url) as journal:
        closed = journal.closed_positions("h")
        logged = journal.events("h", kind="closed")
        newest = journal.closed_positions("h", limit=1)
        btc_only = journal.closed_positions("h", symbol=BTC)
    assert [(c["symbol"], c["reason"]) for c in closed] == [(ETH, "manual"), (BTC, "take_profit")]
    assert [(e["symbol"], e["reason"]) for e in logged] == [
        (BTC, "shutdown"),
        (ETH, "manual"),
        (BTC, "take_profit"),
    ], "the event log keeps the close that was taken back"
    assert [c["reason"] for c in newest] == ["take_profit"]
    assert [c["reason"] for c in btc_only] == ["take_profit"]


def test_a_removal_a_later_list_took_back_is_not_a_closed_position(url: str) -> None:
    # Two failed reads of the bot's client (`[]` twice) untrack a live position (`removed`); the
    # next list shows the very position and restores it (`restored`). Its one real end is the
    # close that follows; the same holds for a close "confirmed" by failed reads and restored.
    paper, client, pm = bot_with_btc(0.0, journal=url, account="h")
    cycle_on_failed_reads(pm, paper)
    assert not pm.has_position(BTC)
    assert list(pm.update_positions()) == []
    assert pm.has_position(BTC), "restored"
    assert pm.close_position(BTC, "manual") is not None
    cycle_on_failed_reads(pm, paper)  # confirms the close by an empty answer: remembered
    assert pm.open_position(ETH, "BUY", 2, 10, 0.05) is True
    client.close_reread_fails_next()
    assert pm.close_position(ETH, "shutdown") is not None  # answered True, never sent
    cycle_on_failed_reads(pm, paper)  # "confirmed" by failed reads: remembered
    assert list(pm.update_positions()) == []  # lists ETH as it was: restored
    assert pm.has_position(ETH)
    assert pm.close_position(ETH, "take_profit") is not None
    assert paper.position(BTC) is None and paper.position(ETH) is None
    assert [e["kind"] for e in pm.events if e["symbol"] == BTC] == [
        "opened",
        "removed",
        "restored",
        "closed",
    ]
    assert [e["kind"] for e in pm.events if e["symbol"] == ETH] == [
        "opened",
        "closed",
        "restored",
        "closed",
    ]

    with Journal(url) as journal:
        closed = journal.closed_positions("h")
    assert [(c["symbol"], c["kind"], c["reason"]) for c in closed] == [
        (BTC, "closed", "manual"),
        (ETH, "closed", "take_profit"),
    ]


@pytest.mark.parametrize("untracked", ["before", "after"])
def test_a_position_whose_entry_was_estimated_is_restored_after_a_restart(
    url: str, untracked: str
) -> None:
    # The order's answer had no average price: the manager's entry is the price it saw, not the
    # venue's. Only what the venue last listed identifies the position once empty answers
    # untracked it — before the restart (a tombstone) or right after it, before any list showed
    # it again (a restored position) — so the journal must keep that with either row.
    paper = estimated_entry_venue()

    def manager() -> PositionManager:
        return PositionManager(
            paper, clock=paper.clock, ticker_retry_delays=(), journal=url, account="e"
        )

    pm = manager()
    if untracked == "before":
        own, venue = removed_with_an_estimated_entry(pm, paper, BTC)
        [row] = Journal(url).tombstones("e")
    else:
        own, venue = listed_with_an_estimated_entry(pm, paper, BTC)
        [row] = Journal(url).open_positions("e")
    assert row["listed"] == {"side": "long", "contracts": 3.0, "entry_price": venue}
    del pm

    again = manager()
    kinds: list[str]
    if untracked == "before":
        assert again.sync_existing_positions() == 1
        kinds = [e["kind"] for e in again.events if e["symbol"] == BTC]
    else:
        kinds = untracked_by_empty_answers_then_back(again, paper)
    assert kinds[-1] == "restored" and "imported" not in kinds, kinds
    assert_the_same_position(again, BTC, own)
    assert Journal(url).tombstones("e") == []


def test_at_start_a_keys_newest_row_wins(url: str) -> None:
    # Rows that should not coexist, made by hand: BTC tracked and closing, ETH closing and
    # tombstoned. A tracked position is newer than a close, a close newer than a tombstone.
    btc = {"symbol": BTC, "side": "long", "contracts": 1.0, "entryPrice": 100.0, "leverage": 10}
    eth = {"symbol": ETH, "side": "long", "contracts": 1.0, "entryPrice": 100.0, "leverage": 10}
    client = listing_client(btc, eth)
    pm = PositionManager(client, journal=url, account="n")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    pm.positions[ETH] = Position(ETH, "long", 100, 1, 10, 95, 110)
    pm.positions[ETH].strategy = "grid"
    client.get_open_positions.return_value = [btc]
    list(pm.update_positions())  # ETH closed outside: a tombstone
    del pm
    run_sql(
        url,
        "INSERT INTO pmrs_closing (account, symbol, closed_seq, closed_at_us, state, attributes) "
        "SELECT account, symbol, updated_seq, entry_time_us, state, attributes "
        f"FROM pmrs_positions WHERE account = 'n' AND symbol = '{BTC}'; "
        "INSERT INTO pmrs_closing (account, symbol, closed_seq, closed_at_us, state, attributes) "
        "SELECT account, symbol, removed_seq, removed_at_us, state, attributes "
        f"FROM pmrs_tombstones WHERE account = 'n' AND symbol = '{ETH}'",
    )
    assert journal_keys(url, "n") == [BTC, ETH]
    assert journal_keys(url, "n", "pmrs_tombstones") == [ETH]

    client.get_open_positions.return_value = [btc, eth]
    again = PositionManager(client, journal=url, account="n")
    assert list(again.positions) == [BTC]
    assert journal_keys(url, "n") == [ETH], "BTC's close row lost to its tracked row"
    assert journal_keys(url, "n", "pmrs_tombstones") == [], "ETH's tombstone lost to its close"
    again.sync_existing_positions()
    # ETH came back as the close it was, not as the tombstone (reported_again).
    assert [(e["kind"], e["reason"]) for e in again.events if e["symbol"] == ETH][-1] == (
        "close_unconfirmed",
        "still_listed",
    )
    assert again.positions[ETH].strategy == "grid"
    assert journal_keys(url, "n") == []
    del again
    assert Journal(url).closed_positions(account="n")[-1]["kind"] == "removed"
    third = PositionManager(client, journal=url, account="n")
    assert list(third.positions) == [BTC, ETH]


@pytest.mark.parametrize("fill", ["open", "scale_in"])
def test_a_fill_no_list_has_shown_is_weighed_after_a_restart_as_before_it(
    url: str, fill: str
) -> None:
    # The bot's own client (no client order ids: only the lists tell). The venue's lists lag
    # the manager's own fill (an open; a scale-in); the bot stops before any list shows it.
    # Before schema version 7 the restarted manager believed the first lagging list: it
    # untracked the open the venue held (its cycles never import: unmanaged until the bot's
    # next sync, ten minutes later), or resized the scale-in back to the lagging size (a sized
    # close would then leave the rest open).
    paper = PaperExchange(seed=1, volatility=0.0)
    client = BotLikeClient(paper)

    def manager() -> PositionManager:
        return bots_manager(client, journal=url, account="f")

    pm = manager()
    if fill == "open":
        opened_behind_a_lagging_list(pm, paper, BTC)
        amount, unlisted = 10.0, {"open": True, "sizes_before": []}
        journaled = ["opened"]
    else:
        scaled_in_behind_a_lagging_list(pm, paper, BTC)
        amount, unlisted = 15.0, {"open": False, "sizes_before": [10.0]}
        journaled = ["opened", "scaled_in"]
    [row] = Journal(url).open_positions("f")
    assert row["unlisted_fills"] == unlisted
    del pm

    again = manager()
    assert cycles_behind_the_lagging_list(again, paper, BTC, amount) == []
    assert [e["kind"] for e in again.events] == [*journaled, "loaded"]
    assert Journal(url).open_positions("f")[0]["unlisted_fills"] is None, "a list showed it"
    assert len(paper.calls_of("create_market_order")) == 1 + (fill == "scale_in")


def test_a_close_no_list_has_confirmed_is_looked_up_after_a_restart_as_before_it(url: str) -> None:
    # A client that takes client order ids: the close filled, the venue's lists lag it, and
    # the bot stops before any list confirms it. The close awaiting confirmation keeps its
    # order's id (schema version 7), so the restarted manager looks the order up before it
    # believes a list that still shows the position. Before, the lagging list put the position
    # back at once (`close_unconfirmed`), and once the list caught up it was recorded `removed`
    # (closed outside the manager, with a judged reason and P/L) instead of the manager's close.
    paper = PaperExchange(seed=1, volatility=0.0)

    def manager() -> PositionManager:
        return PositionManager(
            paper, clock=paper.clock, ticker_retry_delays=(), journal=url, account="c"
        )

    pm = manager()
    closed_behind_a_lagging_list(pm, paper, BTC)
    [closed] = [e for e in pm.events if e["kind"] == "closed"]
    [row] = Journal(url).closing_positions("c")
    assert row["order_id"] == closed["order_id"] is not None
    del pm

    again = manager()
    cycles_after_a_lagging_close(again, paper, BTC)
    assert Journal(url).closing_positions("c") == [], "confirmed"
    [ended] = Journal(url).closed_positions("c")
    assert (ended["kind"], ended["reason"]) == ("closed", closed["reason"])


def test_an_error_from_a_damaged_journal_names_the_database(tmp_path: Path) -> None:
    # Errors met after the file was opened (a damaged page while migrating or restoring, a
    # file that is not a database when read) named no file (found by an audit, 2026-12-06).
    path = tmp_path / "journal.db"
    pm = PositionManager(NO_CLIENT, journal=str(path), account="a")
    for i in range(50):
        pm.positions[f"S{i}/USDT:USDT"] = Position(f"S{i}/USDT:USDT", "long", 100, 1, 10, 95)
    del pm
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 4] = b"\xab" * (4096 * 2)
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(bytes(data))
    with pytest.raises(JournalError, match=f"^sqlite:///{re.escape(str(damaged))}: SQLite: "):
        PositionManager(NO_CLIENT, journal=str(damaged), account="a")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 1000)
    with pytest.raises(JournalError, match=re.escape(str(garbage))):
        Journal(str(garbage))


def test_an_order_row_is_written_before_the_order_after_the_server_ended_the_session() -> None:
    # The writer noticed a session the server had ended (a restart, a failover, an idle
    # timeout) only when a write failed on it, and queued that write for the next call: the
    # order's row reached the journal after the order went out (a process killed meanwhile left
    # nothing to stop a second order) and every such call was an outage (found by an audit).
    url = fresh_postgres("ended")
    paper = PaperExchange(seed=1)
    rows_while_out: list[list[str]] = []
    send = paper.create_market_order

    def spy(*args: Any, **kwargs: Any) -> Any:
        with Journal(url) as journal:
            rows_while_out.append([r["symbol"] for r in journal.orders_in_flight(account="a")])
        return send(*args, **kwargs)

    paper.create_market_order = spy  # type: ignore[method-assign]
    pm = PositionManager(paper, clock=paper.clock, journal=url, account="a")
    psql(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'position-manager-rs' "
        "AND pid <> pg_backend_pid()",
    )
    assert pm.open_position(BTC, "BUY", 1, 10)
    assert rows_while_out == [[BTC]]
    assert "journal_failed" not in [e["kind"] for e in pm.events]


def test_a_manager_fenced_during_an_outage_says_so_and_what_it_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The fencing was reported only as the first failure of an outage: found while writes were
    # already failing it was neither logged nor evented, and the queued events were dropped
    # without a word (found by an audit, 2026-12-06).
    url = fresh_postgres("fenced")
    name = url.rsplit("/", 1)[1]
    older = PositionManager(NO_CLIENT, journal=url, account="bot")
    older.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    base = postgres_base()
    psql(base, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    psql(
        base,
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
    )
    try:
        older.modify_position_targets(BTC, 96.0, None)  # fails and stays queued: an outage
    finally:
        psql(base, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    newer = PositionManager(NO_CLIENT, journal=url, account="bot")  # the bot restarted elsewhere
    caplog.clear()
    older.modify_position_targets(BTC, 97.0, None)
    status = older.journal_status
    assert status is not None and status["fenced"] is True and status["queued_events"] == 0
    reasons = [e["reason"] for e in older.events if e["kind"] == "journal_failed"]
    assert len(reasons) == 2 and "claimed by another manager" in reasons[1], reasons
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("claimed by another manager" in m for m in errors), errors
    assert any("queued by earlier failed writes were not written" in m for m in errors), errors
    assert len(newer.positions) == 1


def test_a_journal_write_does_not_wait_on_another_sessions_lock() -> None:
    # A query someone left open on the journal's rows held every manager call that writes for
    # as long as it ran, Ctrl+C included (found by an audit, 2026-12-06): a write waits at most
    # lock_timeout, fails, stays queued and goes out with the next write.
    url = fresh_postgres("locked")
    pm = PositionManager(NO_CLIENT, journal=url, account="a")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    holder = subprocess.Popen(
        [
            "psql",
            url,
            "-qX",
            "-c",
            "BEGIN; SELECT 1 FROM pmrs_accounts FOR UPDATE; SELECT pg_sleep(60); COMMIT;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while (
            psql(
                url,
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'pmrs_accounts' AND l.granted AND l.mode = 'RowShareLock'",
            )
            == "0"
        ):
            assert time.monotonic() < deadline, "the lock was never taken"
            time.sleep(0.05)
        assert pm.modify_position_targets(BTC, 96.0, None)
        # The call came back while the other session still holds its lock (a hang detector,
        # not a benchmark: the lock is held for 60 s, a write waits at most 5 s).
        assert holder.poll() is None
        assert (pm.journal_status or {}).get("queued_events", 0) >= 1
        assert [e["kind"] for e in pm.events][-1] == "journal_failed"
    finally:
        holder.kill()
        holder.wait(timeout=30)
        # The server runs the holder's pg_sleep to its end unless told.
        psql(
            url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE '%pg_sleep(60)%' "
            "AND pid <> pg_backend_pid()",
        )
    pm.modify_position_targets(BTC, 97.0, None)
    assert (pm.journal_status or {}).get("queued_events") == 0
    assert Journal(url).open_positions(account="a")[0]["stop_loss"] == 97.0


def test_the_readers_order_is_the_same_on_both_databases(tmp_path: Path) -> None:
    # PostgreSQL ordered accounts and symbols by the database's collation ('Zeta' after 'beta'
    # in en-US), SQLite by their bytes (found by an audit, 2026-12-06): a dashboard over either
    # saw a different order, and a `limit` could keep different rows.
    name = f"pmrs_icu_{os.getpid()}"
    base = postgres_base()
    psql(
        base,
        f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
        "LOCALE 'C.UTF-8'",
    )
    urls = [base.rsplit("/", 1)[0] + "/" + name, str(tmp_path / "j.db")]
    for url in urls:
        for account in ("beta", "Zeta", "alpha"):
            pm = PositionManager(NO_CLIENT, journal=url, account=account)
            for symbol in ("eth/usdt:usdt", "BTC/USDT:USDT", "ada/usdt:usdt"):
                pm.positions[symbol] = Position(symbol, "long", 100, 1, 10, 95, 110)
            del pm
    answers = []
    for url in urls:
        with Journal(url) as journal:
            answers.append(
                (
                    [a["account"] for a in journal.accounts()],
                    [(p["account"], p["symbol"]) for p in journal.open_positions()],
                )
            )
    assert answers[0] == answers[1]
    assert answers[0][0] == ["Zeta", "alpha", "beta"]  # by their bytes


def test_a_reader_whose_session_the_server_ended_reads_on_a_new_one() -> None:
    # The reader never reconnected: after a server restart or an idle timeout every query
    # failed until the dashboard rebuilt it (found by an audit, 2026-12-06).
    url = fresh_postgres("reader")
    pm = PositionManager(NO_CLIENT, journal=url, account="a")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    journal = Journal(url)
    assert len(journal.open_positions()) == 1
    psql(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'position-manager-rs' "
        "AND pid <> pg_backend_pid()",
    )
    assert len(journal.open_positions()) == 1
    assert [a["account"] for a in journal.accounts()] == ["a"]
    journal.close()


def test_a_role_with_only_dml_on_a_current_journal_starts_a_manager() -> None:
    # A role a DBA grants a bot (DML on the journal's tables, no CREATE on the schema:
    # PostgreSQL 15's default for public) could not start a manager on a journal already at
    # this version, since every start ran CREATE TABLE IF NOT EXISTS (found by an audit).
    url = fresh_postgres("dml")
    PositionManager(NO_CLIENT, journal=url, account="a")  # the owner creates the schema
    role = f"pmrs_dml_{os.getpid()}"
    psql(
        url,
        f"DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} LOGIN; END IF; END$$; "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}; "
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
    )
    as_role = url.replace("postgres@", f"{role}@", 1)
    pm = PositionManager(NO_CLIENT, journal=as_role, account="a")
    pm.positions[BTC] = Position(BTC, "long", 100, 1, 10, 95, 110)
    assert (pm.journal_status or {}).get("queued_events") == 0
    assert len(Journal(as_role).open_positions(account="a")) == 1
