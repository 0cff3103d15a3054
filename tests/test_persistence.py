"""Persistence: ``save_state(path)`` / ``load_state(path)`` (docs/persistence.md).

* a round trip keeps every field of every position and the bot's JSON-serialisable attributes;
  others are skipped with one warning on ``TradingBot``;
* the restart flow (load, then reconcile or update against the exchange) keeps the state of
  positions the exchange still lists and removes the others with events;
* a corrupt, truncated, future-version, empty or invalid file raises ``StateFileError`` (a
  ``ValueError``) naming the file and leaves the manager empty; a missing file raises
  ``FileNotFoundError``; loading into a manager that tracks positions raises ``ValueError``;
* the write is atomic: an invalid state or an I/O failure leaves the previous file as it was, and
  no temporary file stays behind;
* a restart remembers what the saving manager knew of positions it did not track — tombstones,
  closes awaiting confirmation, re-open holds — with the bot's own client, in hedge mode (also
  through a journal), and for positions whose entry the manager estimated (what the exchange last
  listed identifies them).

The crash test (SIGKILL while saving) is tests/test_crash_safety.py.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bot_sim import (
    BotLikeClient,
    assert_as_it_was,
    bot_with_btc,
    bots_manager,
    cycle_on_failed_reads,
    with_breakout_targets,
)
from helpers_clients import (
    FakeExchange,
    Workers,
    assert_the_same_position,
    closed_behind_a_lagging_list,
    cycles_after_a_lagging_close,
    cycles_behind_the_lagging_list,
    estimated_entry_venue,
    events_of,
    listed_with_an_estimated_entry,
    make_manager,
    make_position,
    opened_behind_a_lagging_list,
    removed_with_an_estimated_entry,
    run_with_timeout,
    scaled_in_behind_a_lagging_list,
    untracked_by_empty_answers_then_back,
)

from position_manager_rs import Journal, PaperExchange, Position, PositionManager, StateFileError

# A client these tests never call: the manager only keeps its book here.
NO_CLIENT: Any = object()

A, B, C = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
ENTRY_TIME = datetime(2025, 3, 4, 5, 6, 7, 891011)
PNL_TIME = datetime(2025, 3, 4, 9, 10, 11, 121314)

# Every field a Position has, as to_dict() shows it.
FIELDS = (
    "symbol",
    "side",
    "entry_price",
    "amount",
    "leverage",
    "stop_loss",
    "take_profit",
    "highest_price",
    "lowest_price",
    "entry_time",
    "trailing_stop_activated",
    "max_favorable_excursion",
    "initial_stop_loss",
    "initial_take_profit",
    "last_pnl",
    "last_pnl_time",
    "profit_velocity",
    "breakeven_moved",
    "profit_acceleration",
    "partial_exits_taken",
    "entry_price_estimated",
)

ATTRIBUTES: dict[str, Any] = {
    "strategy": "breakout",
    "rl_strategy": {"name": "ppo", "params": {"gamma": 0.99, "layers": [64, 64]}, "on": True},
    "market_regime": "trending_up",
    "entry_volatility": 0.1 + 0.2,
    "order_id": 123456789012345678901234567890,
    "tags": ["a", "é", "☃"],
    "note": None,
}


def worked_long() -> Position:
    """A long whose every field differs from what the constructor or an import would set."""
    p = Position(A, "long", 50000.5, 0.125, 7.5, 49000.25, 56000.75)
    p.stop_loss = 49876.54321
    p.take_profit = 57123.456789
    p.highest_price = 51234.5
    p.lowest_price = None
    p.entry_time = ENTRY_TIME
    p.trailing_stop_activated = True
    p.max_favorable_excursion = 0.2468
    p.initial_stop_loss = 48000.0
    p.initial_take_profit = 60000.0
    p.last_pnl = 0.1357
    p.last_pnl_time = PNL_TIME
    p.profit_velocity = -0.000123
    p.breakeven_moved = True
    p.profit_acceleration = 1e-300
    p.partial_exits_taken = 2
    p.entry_price_estimated = True
    for name, value in ATTRIBUTES.items():
        setattr(p, name, value)
    return p


def worked_short() -> Position:
    p = Position(B, "short", 3000, 2, 10, 3090, None)
    p.lowest_price = 2890.125
    p.entry_time = ENTRY_TIME + timedelta(hours=1)
    p.partial_exits_taken = 1
    p.strategy = "mean_reversion"
    return p


def snapshot(pm: PositionManager) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(symbol, fields, own attributes) of every tracked position, in book order."""
    return [(s, p.to_dict(), dict(vars(p))) for s, p in pm.positions.items()]


def saved(tmp_path: Path, *positions: Position) -> tuple[PositionManager, Path]:
    pm = PositionManager(NO_CLIENT)
    for p in positions:
        pm.positions[p.symbol] = p
    path = tmp_path / "state.json"
    assert pm.save_state(path) == len(positions)
    return pm, path


def temp_files(directory: Path) -> list[str]:
    return sorted(f.name for f in directory.iterdir() if ".tmp-" in f.name)


# --------------------------------------------------------------------------- round trip


def test_round_trip_keeps_every_field_the_order_and_the_attributes(tmp_path: Path) -> None:
    pm, path = saved(tmp_path, worked_long(), worked_short(), make_position(C))
    fresh = PositionManager(NO_CLIENT)
    assert fresh.load_state(path) == 3
    assert snapshot(fresh) == snapshot(pm)
    assert list(fresh.positions) == [A, B, C]
    loaded = fresh.positions[A]
    for field in FIELDS:
        assert getattr(loaded, field) == getattr(pm.positions[A], field), field
    assert type(loaded.leverage) is float and type(fresh.positions[B].leverage) is int
    assert loaded.profit_acceleration == 1e-300 and loaded.entry_volatility == 0.1 + 0.2
    assert loaded.order_id == 123456789012345678901234567890  # exact, not a float
    assert vars(loaded) == ATTRIBUTES
    # Fresh objects, tracked and used by the manager like any other.
    assert loaded is not pm.positions[A] and isinstance(loaded, Position)
    assert fresh.get_position(A) is loaded
    assert [(e["kind"], e["symbol"], e["reason"]) for e in fresh.events] == [
        ("loaded", A, "state_file"),
        ("loaded", B, "state_file"),
        ("loaded", C, "state_file"),
    ]
    assert fresh.events[0]["position"]["stop_loss"] == 49876.54321


def test_the_file_is_versioned_json_in_book_order(tmp_path: Path) -> None:
    _, path = saved(tmp_path, make_position(C), worked_long())
    data = json.loads(path.read_text())
    assert data["format"] == "position-manager-rs/state" and data["version"] == 1
    assert datetime.fromisoformat(data["saved_at"])
    assert data["writer"].startswith("position-manager-rs ")
    assert [p["symbol"] for p in data["positions"]] == [C, A]
    assert data["positions"][1]["state"]["stop_loss"] == 49876.54321
    assert data["positions"][1]["extra"]["market_regime"] == "trending_up"
    assert data["positions"][0]["extra"] == {}


def test_an_empty_manager_saves_and_loads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert PositionManager(NO_CLIENT).save_state(path) == 0
    fresh = PositionManager(NO_CLIENT)
    assert fresh.load_state(path) == 0
    assert len(fresh.positions) == 0 and fresh.events == []


def test_paths_may_be_str_pathlib_or_any_pathlike(tmp_path: Path) -> None:
    class Where:  # an os.PathLike by its __fspath__
        def __init__(self, path: Path) -> None:
            self.path = path

        def __fspath__(self) -> str:
            return str(self.path)

    pm, _ = saved(tmp_path, worked_long())
    for where in (str(tmp_path / "a.json"), tmp_path / "b.json", Where(tmp_path / "c.json")):
        assert pm.save_state(where) == 1
        fresh = PositionManager(NO_CLIENT)
        assert fresh.load_state(where) == 1
        assert snapshot(fresh) == snapshot(pm)
    with pytest.raises(TypeError, match=r"path must be a str, bytes or os\.PathLike, got 3"):
        pm.save_state(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"path must be a str, bytes or os\.PathLike"):
        PositionManager(NO_CLIENT).load_state(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- attributes


def test_unserialisable_attributes_are_skipped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="TradingBot")
    a, b = worked_long(), worked_short()
    a.callback = lambda: None
    a.lock = threading.Lock()
    a.nan = math.nan
    a.nested = {"ok": 1, "bad": {1, 2}}
    b.infinite = math.inf
    _, path = saved(tmp_path, a, b, make_position(C))
    warnings = [r for r in caplog.records if r.name == "TradingBot"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert warnings[0].levelno == logging.WARNING
    assert message == (
        "save_state: skipped attributes that are not JSON-serialisable: "
        f"{A} (callback, lock, nan, nested); {B} (infinite)"
    )
    fresh = PositionManager(NO_CLIENT)
    fresh.load_state(path)
    assert vars(fresh.positions[A]) == ATTRIBUTES
    assert vars(fresh.positions[B]) == {"strategy": "mean_reversion"}
    # Nothing skipped: no warning.
    caplog.clear()
    fresh.save_state(path)
    assert [r for r in caplog.records if r.name == "TradingBot"] == []


def test_attributes_come_back_as_json_gives_them(tmp_path: Path) -> None:
    p = make_position(A)
    p.pair = (1, 2)
    p.keyed = {1: "one"}
    _, path = saved(tmp_path, p)
    fresh = PositionManager(NO_CLIENT)
    fresh.load_state(path)
    assert vars(fresh.positions[A]) == {"pair": [1, 2], "keyed": {"1": "one"}}


def test_a_logging_handler_may_call_back_into_the_manager_during_a_save(tmp_path: Path) -> None:
    pm, path = saved(tmp_path, worked_long())
    pm.positions[A].callback = print
    seen: list[int] = []

    class CallsBack(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(len(pm.positions))
            pm.positions[C] = make_position(C)

    logger = logging.getLogger("TradingBot")
    handler = CallsBack(logging.WARNING)
    logger.addHandler(handler)
    try:
        assert run_with_timeout(lambda: pm.save_state(path), 10.0, "save_state") == 1
    finally:
        logger.removeHandler(handler)
    assert seen == [1] and C in pm.positions


# --------------------------------------------------------------------------- restart flow


def restart_setup(tmp_path: Path) -> tuple[FakeExchange, PositionManager, Path]:
    """A long and a short still open on the exchange and one closed while the bot was down."""
    exchange = FakeExchange()
    exchange.open(A, side="long", contracts=0.125, entry_price=50000.5, leverage=7.5)
    exchange.open(B, side="short", contracts=2, entry_price=3000)
    exchange.set_price(A, 50000.5)
    exchange.set_price(B, 3000.0)
    recent = datetime.now() - timedelta(minutes=20)
    a, b, c = worked_long(), worked_short(), make_position(C)
    for p in (a, b, c):
        p.entry_time = recent
    a.max_favorable_excursion = 0.0  # a give-back exit would close it at the entry price
    c.strategy = "gone"
    before = make_manager(exchange)
    for p in (a, b, c):
        before.positions[p.symbol] = p
    path = tmp_path / "state.json"
    before.save_state(path)
    return exchange, before, path


KEPT = (
    "stop_loss",
    "take_profit",
    "highest_price",
    "lowest_price",
    "entry_time",
    "initial_stop_loss",
    "initial_take_profit",
    "trailing_stop_activated",
    "max_favorable_excursion",
    "partial_exits_taken",
    "breakeven_moved",
)


@pytest.mark.parametrize("cycle", ["reconcile_positions", "update_positions"])
def test_restart_keeps_live_positions_and_removes_the_gone_with_events(
    tmp_path: Path, cycle: str
) -> None:
    exchange, before, path = restart_setup(tmp_path)
    pm = make_manager(exchange)
    assert pm.load_state(path) == 3
    if cycle == "reconcile_positions":
        assert pm.reconcile_positions() == 1
    else:
        assert list(pm.update_positions()) == []
    assert list(pm.positions) == [A, B]
    for symbol in (A, B):
        now, then = pm.positions[symbol], before.positions[symbol]
        for field in KEPT:
            assert getattr(now, field) == getattr(then, field), (symbol, field)
        assert vars(now) == vars(then)
    assert pm.positions[A].stop_loss == 49876.54321  # not the 5 % an import would set
    removed = [e for e in events_of(pm, C) if e["kind"] == "removed"]
    assert len(removed) == 1 and removed[0]["reason"]
    assert removed[0]["position"]["stop_loss"] == before.positions[C].stop_loss
    assert [e["kind"] for e in events_of(pm, A)] == ["loaded"]
    # Nothing was ordered on the way.
    assert exchange.calls_of("close_position") == []
    assert exchange.calls_of("create_market_order") == []


def test_a_position_the_exchange_reports_again_after_the_restart_is_restored(
    tmp_path: Path,
) -> None:
    exchange, _, path = restart_setup(tmp_path)
    pm = make_manager(exchange)
    pm.load_state(path)
    c = pm.positions[C]
    list(pm.update_positions())
    assert C not in pm.positions
    exchange.open(C, side="long", contracts=1.0, entry_price=100.0)
    list(pm.update_positions())
    assert pm.positions[C] is c and c.strategy == "gone"


# --------------------------------------------------------------------------- bad files


def good_text(tmp_path: Path) -> str:
    _, path = saved(tmp_path, worked_long(), worked_short())
    return path.read_text()


def bad_files(text: str) -> dict[str, tuple[str, str]]:
    """name -> (file content, a part of the message)."""
    data = json.loads(text)
    future = dict(data, version=2)
    wrong_type = json.loads(text)
    wrong_type["positions"][1]["state"]["amount"] = "2"
    missing = json.loads(text)
    del missing["positions"][0]["state"]["stop_loss"]
    negative = json.loads(text)
    negative["positions"][1]["state"]["contract_size"] = -2
    negative_count = json.loads(text)
    negative_count["positions"][0]["state"]["partial_exits_taken"] = -1
    odd_text = json.loads(text)
    odd_text["positions"][0]["state"]["stop_loss"] = "nan"
    duplicate = json.loads(text)
    duplicate["positions"][1]["symbol"] = A
    return {
        "truncated": (text[: len(text) // 2], "the state file is truncated"),
        "corrupt": (text.replace('"side"', '"side', 1), "the state file is not valid JSON"),
        "garbage": ("\x00\x01binary", "the state file is not valid JSON"),
        "empty": ("", "the state file is empty"),
        "blank": ("\n  \n", "the state file is empty"),
        "future version": (
            json.dumps(future),
            "state file version 2 is newer than this position-manager-rs supports (version 1)",
        ),
        "other format": (json.dumps(dict(data, format="x")), "not a position-manager-rs state"),
        "not an object": ("[]", "the top level is an array"),
        "wrong type": (
            json.dumps(wrong_type),
            'expected a number, "NaN", "Infinity" or "-Infinity", got "2"',
        ),
        "odd text": (json.dumps(odd_text), 'got "nan"'),
        "missing field": (json.dumps(missing), "missing field `stop_loss`"),
        "negative amount": (
            json.dumps(negative),
            f"position 1 ({B!r}): contract_size must be a finite number > 0, got -2".replace(
                "'", '"'
            ),
        ),
        "negative count": (
            json.dumps(negative_count),
            "partial_exits_taken must be >= 0, got -1",
        ),
        "duplicate": (json.dumps(duplicate), "symbol appears more than once"),
        "huge number": (text.replace("50000.5", "1e999", 1), "number out of range"),
    }


def test_bad_files_raise_a_clear_error_and_load_nothing(tmp_path: Path) -> None:
    text = good_text(tmp_path)
    for name, (content, part) in bad_files(text).items():
        path = tmp_path / "bad.json"
        path.write_text(content)
        pm = PositionManager(NO_CLIENT)
        with pytest.raises(StateFileError) as info:
            pm.load_state(path)
        message = str(info.value)
        assert isinstance(info.value, ValueError)
        assert message.startswith(f"{path}: "), (name, message)
        assert part in message, (name, message)
        assert len(pm.positions) == 0 and pm.events == [], name
    # serde's position: line and column.
    (tmp_path / "bad.json").write_text(bad_files(text)["corrupt"][0])
    with pytest.raises(StateFileError, match=r"at line \d+ column \d+"):
        PositionManager(NO_CLIENT).load_state(tmp_path / "bad.json")


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.json"
    pm = PositionManager(NO_CLIENT)
    with pytest.raises(FileNotFoundError) as info:
        pm.load_state(path)
    assert info.value.filename == str(path)
    assert "cannot read the state file" in str(info.value)
    with pytest.raises(OSError):
        pm.load_state(tmp_path)  # a directory
    assert len(pm.positions) == 0 and pm.events == []


def test_loading_into_a_manager_that_tracks_positions_raises(tmp_path: Path) -> None:
    _, path = saved(tmp_path, worked_long())
    pm = PositionManager(NO_CLIENT)
    mine = make_position(C)
    pm.positions[C] = mine
    with pytest.raises(ValueError, match=r"load_state needs an empty manager.*1 position\(s\)"):
        pm.load_state(path)
    assert list(pm.positions) == [C] and pm.positions[C] is mine
    assert [e["kind"] for e in pm.events] == ["added"]
    # Also when loading twice.
    fresh = PositionManager(NO_CLIENT)
    fresh.load_state(path)
    with pytest.raises(ValueError, match="needs an empty manager"):
        fresh.load_state(path)
    assert len(fresh.positions) == 1


# --------------------------------------------------------------------------- saving safely


def test_every_value_an_assignment_gives_saves_and_loads_back(tmp_path: Path) -> None:
    # Stops, targets and figures are not range-checked when assigned (as in the original): a NaN
    # stop from an indicator still warming up, a negative target from an ATR below the price.
    # What the manager held must come back as it was; the save refused it before, and a journal
    # could not read it back (the position was lost at the restart).
    odd = {
        "stop_loss": math.nan,
        "take_profit": -0.0021,
        "highest_price": math.inf,
        "initial_take_profit": -math.inf,
        "max_favorable_excursion": math.inf,
        "last_pnl": math.nan,
        "profit_velocity": -math.inf,
    }
    p = worked_short()
    for field, value in odd.items():
        setattr(p, field, value)
    pm, path = saved(tmp_path, worked_long(), p)
    saved_state = json.loads(path.read_text())
    state = saved_state["positions"][1]["state"]
    assert state["stop_loss"] == "NaN" and state["highest_price"] == "Infinity"
    assert state["initial_take_profit"] == "-Infinity" and state["take_profit"] == -0.0021
    # A size, entry or leverage the setters refuse since 2026-12-06 (a zero leverage divided
    # every update by zero): a state saved before then may hold them, and still loads.
    old = {"amount": 0.0, "entry_price": -1.0, "leverage": 0.0}
    state.update(old)
    path.write_text(json.dumps(saved_state))
    odd.update(old)
    fresh = PositionManager(NO_CLIENT)
    assert fresh.load_state(path) == 2
    back = fresh.positions[B]
    for field, value in odd.items():
        got = getattr(back, field)
        assert (math.isnan(got) and math.isnan(value)) or got == value, (field, got, value)
    assert back.strategy == "mean_reversion"
    assert fresh.positions[A].to_dict() == pm.positions[A].to_dict()


def test_a_failed_write_is_an_os_error_and_leaves_nothing_behind(tmp_path: Path) -> None:
    pm, _ = saved(tmp_path, worked_long())
    with pytest.raises(FileNotFoundError):
        pm.save_state(tmp_path / "no-such-dir" / "state.json")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    with pytest.raises(IsADirectoryError, match="cannot save the state: Is a directory"):
        pm.save_state(tmp_path / "taken")  # refused before anything is written
    assert temp_files(tmp_path) == []


def test_saving_replaces_the_file_and_clears_leftovers_of_dead_writers(tmp_path: Path) -> None:
    pm, path = saved(tmp_path, worked_long())
    dead = tmp_path / ".state.json.tmp-999999999-3"  # beyond any pid_max: a dead writer
    dead.write_text('{"format": "position-manager-rs/st')
    other = tmp_path / ".other.json.tmp-999999999-3"
    other.write_text("")
    pm.positions[B] = worked_short()
    assert pm.save_state(path) == 2
    assert temp_files(tmp_path) == [other.name]
    fresh = PositionManager(NO_CLIENT)
    assert fresh.load_state(path) == 2


def test_saves_while_other_threads_change_the_book_always_load(tmp_path: Path) -> None:
    pm = PositionManager(NO_CLIENT)
    path = tmp_path / "state.json"
    workers = Workers()
    symbols = [f"S{i}/USDT:USDT" for i in range(20)]
    counts: list[int] = []

    def churn() -> None:
        i = 0
        while not workers.stop.is_set():
            s = symbols[i % len(symbols)]
            if s in pm.positions:
                pm.positions.pop(s, None)
            else:
                p = make_position(s)
                p.strategy = s
                pm.positions[s] = p
            i += 1

    def save() -> None:
        for _ in range(40):
            counts.append(pm.save_state(path))
            fresh = PositionManager(NO_CLIENT)
            assert fresh.load_state(path) == counts[-1]
            assert all(p.strategy == s for s, p in fresh.positions.items())
        workers.stop.set()

    workers.spawn("churn", churn)
    workers.spawn("save", save)
    workers.start()
    workers.join(30.0)
    assert len(counts) == 40 and temp_files(tmp_path) == []


# -- what a restart must not forget: tombstones, closes awaiting confirmation, re-open holds ----


def loaded(
    client: BotLikeClient, path: Path, caplog: pytest.LogCaptureFixture, hold: float = 0.0
) -> tuple[PositionManager, list[str]]:
    """A restarted manager that loaded ``path``, and the ``TradingBot`` messages it logged."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="TradingBot"):
        pm = bots_manager(client, hold)
        pm.load_state(path)
    return pm, [r.getMessage() for r in caplog.records if r.name == "TradingBot"]


def test_a_close_the_bots_client_never_sent_is_tracked_again_after_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Shutdown with CLOSE_POSITIONS_ON_SHUTDOWN: the bot's client answers True for a close whose
    # re-read failed, without sending it. The bot saves its state and exits; the restarted bot's
    # sync must find the very same position (stops, targets, attributes), not import a new one.
    paper, client, pm = bot_with_btc()
    with_breakout_targets(pm, A)
    client.close_reread_fails_next()
    assert pm.close_position(A, "shutdown") is not None, "booked as closed"
    assert client.closes_without_order == 1 and paper.position(A) is not None
    path = tmp_path / "state.json"
    assert pm.save_state(path) == 0, "no tracked position"
    assert [c["symbol"] for c in json.loads(path.read_text())["closing"]] == [A]

    again, messages = loaded(client, path, caplog)
    assert (
        f"Loaded 0 positions from {path}; 1 close(s) awaiting confirmation by the next "
        "position list"
    ) in messages
    assert not again.has_position(A), "awaiting confirmation, not tracked"
    assert again.sync_existing_positions() == 1, "the one position, tracked again"
    assert_as_it_was(again.positions[A])
    assert [(e["kind"], e["reason"]) for e in again.events] == [
        ("close_unconfirmed", "still_listed")
    ]
    assert client.calls["create_market_order"] == 1, "nothing sent again"


def test_an_open_whose_answer_was_lost_is_not_sent_again_after_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The open's order filled but its answer was lost, its lookup by client id could not reach
    the venue, and the venue's lists lag the fill by minutes. The bot saves its state and
    restarts: the file keeps the open with its unknown outcome, so the restarted manager's open
    of the symbol sends nothing until the exchange tells, and the position is then tracked
    with that open's stop. (Before, the file kept no order: the restarted bot's open went out
    again, on top.)"""
    paper = PaperExchange(seed=1, volatility=0.0)

    def manager() -> PositionManager:
        return PositionManager(
            paper, clock=paper.clock, ticker_retry_delays=(), outcome_grace_seconds=300
        )

    pm = manager()
    paper.lag_positions_next(6)
    paper.lose_answer_next("create_market_order")
    # Its lookup cannot reach the venue (a timeout) for a while.
    paper.fail_next("get_order_by_client_id", times=3, error=TimeoutError)
    assert pm.open_position(A, "BUY", 3, 10, 0.05) is False, "outcome unknown"
    assert (paper.position(A) or {}).get("contracts") == 3, "the order filled"
    path = tmp_path / "state.json"
    assert pm.save_state(path) == 0
    [order] = json.loads(path.read_text())["orders"]
    assert (order["symbol"], order["intent"]["kind"], order["intent"]["amount"]) == (A, "open", 3)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="TradingBot"):
        again = manager()
        assert again.load_state(path) == 0
    assert (
        f"Loaded 0 positions from {path}; 1 order(s) with an unknown outcome taken back"
    ) in caplog.text
    assert [(e["kind"], e["reason"]) for e in again.events] == [("outcome_unknown", "open")]
    # The bot tries to open the symbol every minute while the lists lag: nothing goes out,
    # and the position is tracked once the exchange tells (its lookup, or its list).
    for _ in range(4):
        assert again.open_position(A, "BUY", 3, 10, 0.05) is False
        paper.advance(1)
        assert list(again.update_positions()) == []
    assert (paper.position(A) or {}).get("contracts") == 3, "no second order"
    assert len(paper.calls_of("create_market_order")) == 1
    p = again.positions[A]
    assert (p.side, p.amount) == ("long", 3)
    assert p.stop_loss == pytest.approx(p.entry_price * 0.95)


def test_a_confirmed_close_is_not_saved_and_an_unconfirmed_one_is_confirmed_after_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paper, client, pm = bot_with_btc()
    assert pm.close_position(A, "manual") is not None  # sent: the venue closed it
    assert paper.position(A) is None
    unconfirmed, confirmed = tmp_path / "unconfirmed.json", tmp_path / "confirmed.json"
    pm.save_state(unconfirmed)
    assert [c["symbol"] for c in json.loads(unconfirmed.read_text())["closing"]] == [A]
    assert list(pm.update_positions()) == []  # the list confirms the close
    pm.save_state(confirmed)
    assert "closing" not in json.loads(confirmed.read_text()), "confirmed: nothing to remember"

    # Restarted from the file saved before the confirmation: the first list confirms it, and
    # nothing comes back; the symbol can be traded again.
    again, _ = loaded(client, unconfirmed, caplog)
    assert again.sync_existing_positions() == 0
    assert not again.has_position(A) and list(again.events) == []
    assert again.open_position(A, "BUY", 1, 10, 0.05) is True
    assert client.calls["create_market_order"] == 2, "the first open, and this one"


@pytest.mark.parametrize("added_by_hand", [False, True])
def test_a_position_removed_on_the_bots_failed_reads_comes_back_as_it_was_after_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, added_by_hand: bool
) -> None:
    # Two failed reads (the bot's client answers []) untrack a live position: a tombstone, kept
    # as doubtful (empty answers cannot tell a closed position from failed reads). The bot
    # saves and restarts; when the reads work again, the position is restored with its stops
    # and the bot's attributes, not imported with fresh ones — also when a person added to it
    # meanwhile (then at the venue's size).
    paper, client, pm = bot_with_btc()
    with_breakout_targets(pm, A)
    assert list(pm.update_positions()) == []  # listed: what identifies it on the venue
    cycle_on_failed_reads(pm, paper)
    assert not pm.has_position(A)
    path = tmp_path / "state.json"
    pm.save_state(path)
    [tomb] = json.loads(path.read_text())["tombstones"]
    assert (tomb["symbol"], tomb["listed"]["side"], tomb["listed"]["contracts"]) == (A, "long", 3)
    assert tomb["doubtful"] is True and "own_end" not in tomb
    if added_by_hand:
        paper.create_market_order(A, "buy", 2, 10)  # on the venue's UI, not by the bot

    again, messages = loaded(client, path, caplog)
    assert (
        f"Loaded 0 positions from {path}; 1 removed position(s) remembered (restored if "
        "listed again)"
    ) in messages
    assert again.sync_existing_positions() == 1
    assert_as_it_was(again.positions[A])
    if added_by_hand:
        assert again.positions[A].amount == 5.0
        assert [e["kind"] for e in again.events] == ["restored", "resized"]
    else:
        assert [e["kind"] for e in again.events] == ["restored"]


def test_a_reopen_hold_survives_a_restart_from_the_state_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The same failed reads with reopen_hold_seconds: the bot restarts 200 s later while the
    # reads still fail; without the saved hold its open would go on top of the live position.
    paper, client, pm = bot_with_btc(hold=300.0)
    cycle_on_failed_reads(pm, paper)
    assert not pm.has_position(A)
    path = tmp_path / "state.json"
    pm.save_state(path)
    [hold] = json.loads(path.read_text())["holds"]
    assert hold["symbol"] == A

    paper.clock.advance(200.0)
    again, messages = loaded(client, path, caplog, hold=300.0)
    assert any(m.endswith(f"; not opening again yet (reopen_hold_seconds): {A}") for m in messages)
    paper.fail_next("get_open_positions", times=2)
    with caplog.at_level(logging.INFO, logger="TradingBot"):
        assert again.open_position(A, "BUY", 3, 10, 0.05) is False
    assert "not opening it again for 100.0 more seconds" in caplog.text
    assert client.calls["create_market_order"] == 1, "no second order after the restart"
    venue = paper.position(A)
    assert venue is not None and venue["contracts"] == 3.0, "held once, not twice"


@pytest.mark.parametrize("kept_by", ["state_file", "journal"])
def test_hedge_mode_legs_are_remembered_under_their_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kept_by: str
) -> None:
    # Two legs of one symbol: the long one closed by the manager, then two empty answers: they
    # untrack the short one and "confirm" the long one's close — both may be failed reads, so
    # both legs are held. The short leg is remembered as a tombstone; the long leg's close was
    # sent under a client order id and accepted, so it is remembered as the end of the
    # manager's own close (a list that shows it again may lag the close: it is tracked again
    # only once the outcome rules' lists show it). After a restart from the state file (or the
    # journal), with the reads still empty, neither leg is opened again on top; once the venue
    # answers, the short leg comes back as it was and the holds end.
    paper = PaperExchange(seed=6, position_mode="hedge", volatility=0.0)
    journal = str(tmp_path / "journal.db")
    path = tmp_path / "state.json"

    def manager() -> PositionManager:
        kept: dict[str, Any] = {"journal": journal} if kept_by == "journal" else {}
        return PositionManager(
            paper,
            clock=paper.clock,
            position_mode="hedge",
            reopen_hold_seconds=300.0,
            ticker_retry_delays=(),
            **kept,
        )

    long_key, short_key = f"{A}@long", f"{A}@short"
    pm = manager()
    assert pm.open_position(A, "BUY", 5, 10) and pm.open_position(A, "SELL", 3, 10)
    assert list(pm.update_positions()) == []
    pm.positions[short_key].strategy = "hedge"
    assert pm.close_position(long_key, "manual") is not None
    paper.answer_empty_next(2)
    assert list(pm.update_positions()) == []
    assert list(pm.positions) == []
    if kept_by == "state_file":
        assert pm.save_state(path) == 0
        saved = json.loads(path.read_text())
        tombstones, holds = saved["tombstones"], saved["holds"]
        closing = saved.get("closing", [])
    else:
        with Journal(journal) as reader:
            tombstones, holds = reader.tombstones(), reader.reopen_holds()
            closing = reader.closing_positions()
    assert sorted((t["symbol"], t.get("own_end", False)) for t in tombstones) == [
        (long_key, True),
        (short_key, False),
    ]
    assert sorted(h["symbol"] for h in holds) == [long_key, short_key]
    assert closing == [], "the empty answers ended the long leg's close"
    del pm

    paper.clock.advance(60.0)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="TradingBot"):
        again = manager()
        if kept_by == "state_file":
            again.load_state(path)
        paper.answer_empty_next(8)
        assert again.open_position(A, "SELL", 3, 10) is False, "held: not on top"
        assert again.open_position(A, "BUY", 5, 10) is False, "held too"
    assert f"(reopen_hold_seconds): {long_key}, {short_key}" in caplog.text
    assert paper.position(A, "long") is None
    short = paper.position(A, "short")
    assert short is not None and short["contracts"] == 3.0, "held once, not twice"

    # The venue answers again (the empty answers the opens did not use are spent here).
    assert any(paper.get_open_positions() for _ in range(8))
    assert list(again.update_positions()) == []
    assert list(again.positions) == [short_key]
    assert again.positions[short_key].strategy == "hedge"
    assert again.positions[short_key].amount == 3.0
    assert "restored" in [e["kind"] for e in again.events if e["symbol"] == short_key]
    assert again.open_position(A, "BUY", 2, 10) is True, "a live list ended the holds"


@pytest.mark.parametrize("untracked", ["before", "after"])
def test_a_position_whose_entry_was_estimated_is_restored_after_a_restart(
    tmp_path: Path, untracked: str
) -> None:
    # The order's answer had no average price: the manager's entry is the price it saw, not the
    # venue's. Only what the venue last listed identifies the position once empty answers
    # untracked it — before the save (a tombstone) or right after the restart, before any list
    # showed it again (a loaded position) — so the state file must keep that with either.
    paper = estimated_entry_venue()
    pm = PositionManager(paper, clock=paper.clock, ticker_retry_delays=())
    path = tmp_path / "state.json"
    if untracked == "before":
        own, venue = removed_with_an_estimated_entry(pm, paper, A)
        pm.save_state(path)
        [saved] = json.loads(path.read_text())["tombstones"]
    else:
        own, venue = listed_with_an_estimated_entry(pm, paper, A)
        pm.save_state(path)
        [saved] = json.loads(path.read_text())["positions"]
    assert saved["listed"] == {"side": "long", "contracts": 3.0, "entry_price": venue}

    again = PositionManager(paper, clock=paper.clock, ticker_retry_delays=())
    again.load_state(path)
    kinds: list[str]
    if untracked == "before":
        assert again.sync_existing_positions() == 1
        kinds = [e["kind"] for e in again.events]
    else:
        kinds = untracked_by_empty_answers_then_back(again, paper)
    assert kinds[-1] == "restored" and "imported" not in kinds, kinds
    assert_the_same_position(again, A, own)


@pytest.mark.parametrize("fill", ["open", "scale_in"])
def test_a_fill_no_list_has_shown_is_weighed_after_a_restart_as_before_it(
    fill: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The venue's lists lag the manager's own fill (an open; a scale-in), and the bot saves
    its state and restarts before any list shows it: the file keeps what no list has shown
    (``unlisted_fills``), so the restarted manager's first lagging list is counted against the
    outcome rules as the saving manager's would have been, not believed at once (the position
    was untracked; the scale-in resized back)."""
    paper = PaperExchange(seed=1, volatility=0.0)
    client = BotLikeClient(paper)
    pm = bots_manager(client)
    unlisted: dict[str, object]
    if fill == "open":
        opened_behind_a_lagging_list(pm, paper, A)
        amount, unlisted = 10.0, {"open": True}
    else:
        scaled_in_behind_a_lagging_list(pm, paper, A)
        amount, unlisted = 15.0, {"sizes_before": [10.0]}
    path = tmp_path / "state.json"
    assert pm.save_state(path) == 1
    [saved] = json.loads(path.read_text())["positions"]
    assert saved["unlisted_fills"] == unlisted

    again, _ = loaded(client, path, caplog)
    assert cycles_behind_the_lagging_list(again, paper, A, amount) == []
    again.save_state(path)
    [saved] = json.loads(path.read_text())["positions"]
    assert "unlisted_fills" not in saved, "a list showed it: the file is as earlier versions wrote"


def test_a_close_no_list_has_confirmed_is_looked_up_after_a_restart_as_before_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A close whose order filled, saved before any list confirmed it while the venue's lists
    lag it: the file keeps the close order's client id (``closing[].order_id``), so the loaded
    manager looks the order up before it believes a list that still shows the position (before:
    the position was tracked again at once, then recorded ``removed`` with a judged reason and
    P/L once the list caught up)."""
    paper = PaperExchange(seed=1, volatility=0.0)
    pm = PositionManager(paper, clock=paper.clock, ticker_retry_delays=())
    closed_behind_a_lagging_list(pm, paper, A)
    [closed] = [e for e in pm.events if e["kind"] == "closed"]
    path = tmp_path / "state.json"
    pm.save_state(path)
    [saved] = json.loads(path.read_text())["closing"]
    assert saved["order_id"] == closed["order_id"] is not None

    again = PositionManager(paper, clock=paper.clock, ticker_retry_delays=())
    again.load_state(path)
    cycles_after_a_lagging_close(again, paper, A)
