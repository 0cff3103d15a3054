"""Whatever the exchange client answers, the cycle never raises and no tracked position is lost
through a failed or malformed answer (DESIGN.md safety rule 3, "Errors and bad input").

Covers ``get_open_positions`` (update cycle, ``close_position``, ``reconcile_positions``,
``sync_existing_positions``), ``get_ticker``, ``get_ohlcv`` and the client's ``close_position``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable
from unittest.mock import Mock

import pytest
from helpers_clients import (
    FakeExchange,
    exchange_entry,
    make_manager,
    make_position,
    run_memory_limited,
)

from position_manager_rs import Position, PositionManager

NAN = float("nan")


def raising(message: str) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError(message)

    return fail


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("TradingBot")
    ]


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    for name in ["TradingBot", "TradingBot.Position", "TradingBot.Order"]:
        caplog.set_level(logging.DEBUG, logger=name)


def tracked_pair(exchange: FakeExchange) -> tuple[PositionManager, dict[str, Position]]:
    pm = make_manager(exchange)
    book = {"A": make_position("A"), "B": make_position("B")}
    pm.positions.update(book)
    return pm, book


def assert_book_intact(pm: PositionManager, book: dict[str, Position]) -> None:
    assert list(pm.positions) == list(book)
    for s, p in book.items():
        assert pm.positions[s] is p
    removed = [(e["kind"], e["symbol"]) for e in pm.events if e["kind"] in ("removed", "closed")]
    assert not removed, removed


# --------------------------------------------------------------------------- get_open_positions


BAD_LISTS: list[tuple[str, Callable[[], Any]]] = [
    ("raises", raising("network down")),
    ("None", lambda: None),
    ("Mock", Mock),
    ("dict", lambda: {"symbol": "A", "contracts": 1.0}),
    ("string", lambda: "A,B"),
    ("int", lambda: 0),
    ("non-dict entries", lambda: ["A", 1, None, 2.5, ["B"]]),
    ("symbol None", lambda: [exchange_entry(None)]),
    ("dict without symbol", lambda: [{"contracts": 1.0, "side": "long", "entryPrice": 100.0}]),
    ("empty symbol", lambda: [exchange_entry("")]),
    ("int symbol", lambda: [exchange_entry(5)]),
    ("Mock entries", lambda: [Mock(), Mock()]),
    ("garbage mixed with other symbols", lambda: [exchange_entry("C"), "junk", None]),
    # One entry more than MAX_POSITION_ENTRIES (100 000): not a usable answer, though every
    # entry is well-formed (before, it was read in full and removed B).
    ("longer than the cap", lambda: [exchange_entry("A")] * 100_001),
]
BAD_LIST_IDS = [name for name, _ in BAD_LISTS]


@pytest.mark.parametrize(("name", "answer"), BAD_LISTS, ids=BAD_LIST_IDS)
def test_update_cycle_keeps_positions(
    caplog: pytest.LogCaptureFixture, name: str, answer: Callable[[], Any]
) -> None:
    exchange = FakeExchange()
    exchange.on_get_open_positions = answer
    pm, book = tracked_pair(exchange)
    for _ in range(3):  # repeated bad answers never add up to a removal
        assert list(pm.update_positions()) == []
    assert_book_intact(pm, book)
    assert warnings(caplog), "a bad position list must be reported"
    assert not exchange.calls_of("close_position")


@pytest.mark.parametrize(("name", "answer"), BAD_LISTS, ids=BAD_LIST_IDS)
def test_close_position_keeps_unverifiable_positions(
    caplog: pytest.LogCaptureFixture, name: str, answer: Callable[[], Any]
) -> None:
    exchange = FakeExchange()
    exchange.on_get_open_positions = answer
    pm, book = tracked_pair(exchange)
    assert pm.close_position("A") is None
    assert_book_intact(pm, book)
    assert not exchange.calls_of("close_position"), "no order without a verified position"
    assert warnings(caplog)


@pytest.mark.parametrize(("name", "answer"), BAD_LISTS, ids=BAD_LIST_IDS)
def test_reconcile_and_sync_keep_positions(name: str, answer: Callable[[], Any]) -> None:
    exchange = FakeExchange()
    exchange.on_get_open_positions = answer
    pm, book = tracked_pair(exchange)
    pm.reconcile_positions()
    pm.sync_existing_positions()
    assert set(pm.positions) - set(book) <= {"C"}  # only a well-formed extra entry may come in
    for s, p in book.items():
        assert pm.positions[s] is p
    assert not [e for e in pm.events if e["kind"] == "removed"]


def test_a_list_longer_than_the_cap_is_named_in_the_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exchange = FakeExchange()
    exchange.on_get_open_positions = lambda: [exchange_entry("A")] * 100_001
    pm, book = tracked_pair(exchange)
    assert list(pm.update_positions()) == []
    assert_book_intact(pm, book)
    assert any(
        "get_open_positions() answered 100001 entries, more than the 100000 an answer may have" in w
        for w in warnings(caplog)
    ), warnings(caplog)


# A child's client answers ``positions`` and ``candles`` (set by the script before it), and
# the TradingBot records it logs are kept in ``records``.
HUGE_ANSWER_CHILD = """
import logging
from position_manager_rs import Position, PositionManager
class Client:
    def get_open_positions(self): return positions
    def get_ticker(self, s): return {"last": 100.0}
    def get_ohlcv(self, s, timeframe="1h", limit=100): return candles
    def close_position(self, s): return True
records = []
class Keep(logging.Handler):
    def emit(self, record): records.append(record.getMessage())
logging.getLogger("TradingBot").addHandler(Keep())
pm = PositionManager(Client(), ticker_retry_delays=())
"""

HUGE_POSITION_LIST = (
    """
entry = {"symbol": "A", "contracts": 1.0, "side": "long", "entryPrice": 100.0, "leverage": 10}
positions = [entry] * 30_000_000  # 240 MB here; an owned record per entry was gigabytes
candles = []
"""
    + HUGE_ANSWER_CHILD
    + """
b = Position("B", "long", 100.0, 1.0, 10, 95.0, 110.0)
pm.positions["B"] = b
print(pm.sync_existing_positions(), list(pm.update_positions()), pm.positions.get("B") is b)
print(any("answered 30000000 entries" in r for r in records))
"""
)


def test_a_huge_position_list_is_refused_without_reading_it() -> None:
    # Before: every entry was converted (gigabytes) and the process aborted, or the B-less list
    # removed B.
    out = run_memory_limited(HUGE_POSITION_LIST)
    assert out.splitlines() == ["0 [] True", "True"]


def test_well_formed_answer_omitting_a_symbol_does_remove_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The control case: the same harness detects a removal when one is legitimate.
    exchange = FakeExchange()
    exchange.open("A")
    pm, book = tracked_pair(exchange)
    list(pm.update_positions())
    assert list(pm.positions) == ["A"]
    removed = [e for e in pm.events if e["kind"] == "removed"]
    assert [(e["symbol"], e["reason"]) for e in removed] == [("B", "closed_externally")]
    assert removed[0]["position"]["entry_price"] == book["B"].entry_price


BAD_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("contracts abc", {"contracts": "abc"}),
    ("contracts NaN", {"contracts": NAN}),
    ("contracts negative", {"contracts": -3.0}),
    ("side odd", {"side": "flat"}),
    ("entryPrice abc", {"entry_price": "abc"}),
    ("entryPrice NaN", {"entry_price": NAN}),
    ("leverage abc", {"leverage": "abc"}),
    ("leverage NaN", {"leverage": NAN}),
]


# `contracts: None` and `side: None` are "phantom" entries (a venue listing a symbol with no
# position behind it): they confirm the absence, see tests/test_reconciliation_policy.py.


@pytest.mark.parametrize(("name", "fields"), BAD_FIELDS, ids=[n for n, _ in BAD_FIELDS])
def test_listed_with_bad_fields_counts_as_present(name: str, fields: dict[str, Any]) -> None:
    exchange = FakeExchange()
    exchange.open("A", **fields)
    exchange.open("B", **fields)
    pm, book = tracked_pair(exchange)
    list(pm.update_positions())
    pm.sync_existing_positions()
    pm.reconcile_positions()
    assert_book_intact(pm, book)


def test_duplicate_entries() -> None:
    exchange = FakeExchange()
    entries = [exchange_entry("A"), exchange_entry("A", contracts=2.0), exchange_entry("B")]
    entries += [exchange_entry("C"), exchange_entry("C")]
    exchange.on_get_open_positions = lambda: [dict(e) for e in entries]
    pm, book = tracked_pair(exchange)
    assert list(pm.update_positions()) == []
    assert pm.sync_existing_positions() == 1  # C once, never twice
    assert list(pm.positions) == ["A", "B", "C"]
    assert pm.positions["A"] is book["A"]
    assert len([e for e in pm.events if e["kind"] == "imported"]) == 1


@pytest.mark.parametrize(
    "fields",
    [
        # a usable-looking size and the other side: no resize, no flip
        {"contracts": 7.0, "side": "short"},
        # what would be a placeholder without the mark: no removal
        {"contracts": None, "side": None},
    ],
    ids=["usable-looking", "placeholder-looking"],
)
def test_an_entry_its_client_marks_unreadable_keeps_the_position_as_it_is(
    fields: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # The protocol's ``unreadable`` (CcxtClient's for a venue size field it cannot read):
    # the manager reads the key itself, whatever ``contracts`` and ``side`` say.
    exchange = FakeExchange()
    entries = [
        exchange_entry("A", unreadable="okx 'pos' is None", **fields),
        exchange_entry("B"),
    ]
    exchange.on_get_open_positions = lambda: [dict(e) for e in entries]
    pm, book = tracked_pair(exchange)
    with caplog.at_level(logging.WARNING):
        list(pm.update_positions())
        assert pm.sync_existing_positions() == 0
        pm.reconcile_positions()
    assert_book_intact(pm, book)
    assert (pm.positions["A"].side, pm.positions["A"].amount) == ("long", 1.0)
    assert (
        "Position entry for A is unusable (okx 'pos' is None); treating it as listed, "
        "changing nothing"
    ) in caplog.messages


SYNC_SKIPPED: list[tuple[str, dict[str, Any]]] = [
    ("contracts abc", {"contracts": "abc"}),
    ("contracts NaN", {"contracts": NAN}),
    ("contracts zero", {"contracts": 0}),
]


@pytest.mark.parametrize(("name", "fields"), SYNC_SKIPPED, ids=[n for n, _ in SYNC_SKIPPED])
def test_sync_skips_a_malformed_entry_and_imports_the_rest(
    name: str, fields: dict[str, Any]
) -> None:
    exchange = FakeExchange()
    exchange.open("BAD", **fields)
    exchange.open("GOOD")
    pm = make_manager(exchange)
    assert pm.sync_existing_positions() == 1
    assert list(pm.positions) == ["GOOD"]
    assert pm.positions["GOOD"].amount == 1.0


@pytest.mark.parametrize(
    "fields",
    [{"contracts": "abc"}, {"contracts": None}, {"side": None}],
    ids=["contracts abc", "contracts None", "side None"],
)
def test_sync_warns_about_the_skipped_entry(
    caplog: pytest.LogCaptureFixture, fields: dict[str, Any]
) -> None:
    exchange = FakeExchange()
    exchange.open("BAD", **fields)
    pm = make_manager(exchange)
    caplog.clear()
    assert pm.sync_existing_positions() == 0
    assert any("BAD" in w for w in warnings(caplog)), warnings(caplog)


def test_sync_warns_about_nan_contracts(caplog: pytest.LogCaptureFixture) -> None:
    exchange = FakeExchange()
    exchange.open("BAD", contracts=NAN)
    pm = make_manager(exchange)
    caplog.clear()
    assert pm.sync_existing_positions() == 0
    assert any("BAD" in w for w in warnings(caplog)), warnings(caplog)


@pytest.mark.parametrize(
    "leverage", ["abc", 0, -5, NAN, None], ids=["abc", "0", "-5", "NaN", "None"]
)
def test_sync_invalid_leverage_falls_back_to_10(
    caplog: pytest.LogCaptureFixture, leverage: Any
) -> None:
    exchange = FakeExchange()
    exchange.open("C", leverage=leverage, info={})
    pm = make_manager(exchange)
    caplog.clear()
    assert pm.sync_existing_positions() == 1
    assert pm.positions["C"].leverage == 10
    assert any("C" in w and "10x" in w for w in warnings(caplog)), warnings(caplog)


@pytest.mark.parametrize("entry_price", [None, NAN, 0.0, -5.0], ids=["None", "NaN", "0", "-5"])
def test_sync_missing_entry_price_is_estimated_and_flagged(
    caplog: pytest.LogCaptureFixture, entry_price: Any
) -> None:
    exchange = FakeExchange()
    exchange.open("C", entry_price=entry_price)
    exchange.set_price("C", 123.0)
    pm = make_manager(exchange)
    caplog.clear()
    assert pm.sync_existing_positions() == 1
    p = pm.positions["C"]
    assert p.entry_price == 123.0
    assert p.entry_price_estimated is True
    assert any("C" in w for w in warnings(caplog))


# --------------------------------------------------------------------------- get_ticker


BAD_TICKERS: list[tuple[str, Callable[[str], Any]]] = [
    ("None", lambda s: None),
    ("empty dict", lambda s: {}),
    ("last None", lambda s: {"last": None}),
    ("last 0", lambda s: {"last": 0}),
    ("last -5", lambda s: {"last": -5}),
    ("last abc", lambda s: {"last": "abc"}),
    ("last numeric string", lambda s: {"last": "101.5"}),
    ("last NaN", lambda s: {"last": NAN}),
    ("last inf", lambda s: {"last": float("inf")}),
    ("Mock", lambda s: Mock()),
    ("string", lambda s: "101.5"),
    ("list", lambda s: [101.5]),
    ("raises", raising("ticker down")),
]


@pytest.mark.parametrize(("name", "ticker"), BAD_TICKERS, ids=[n for n, _ in BAD_TICKERS])
def test_bad_ticker_skips_the_position_this_cycle(
    caplog: pytest.LogCaptureFixture, name: str, ticker: Callable[[str], Any]
) -> None:
    exchange = FakeExchange()
    exchange.open("A")
    exchange.on_get_ticker = ticker
    pm = make_manager(exchange)
    a = make_position("A")
    pm.positions["A"] = a
    before = a.to_dict()
    assert list(pm.update_positions()) == []
    assert pm.positions["A"] is a
    assert a.to_dict() == before, "no update from a bad price"
    assert len(exchange.calls_of("get_ticker")) == 3  # the original's three attempts
    assert "All ticker retries failed for A, skipping position update this cycle" in warnings(
        caplog
    )
    assert pm.close_position("A") is None
    assert pm.positions["A"] is a
    assert not exchange.calls_of("close_position")


def test_ticker_recovers_on_a_retry() -> None:
    exchange = FakeExchange()
    exchange.open("A", leverage=1)
    answers = iter([None, {"last": 94.0}])  # first attempt fails, the retry gives a price
    exchange.on_get_ticker = lambda s: next(answers, {"last": 94.0})
    pm = make_manager(exchange)
    a = make_position("A", leverage=1)
    pm.positions["A"] = a
    closed = list(pm.update_positions())
    assert [(s, p) for s, _, p in closed] == [("A", a)]
    assert [e["reason"] for e in pm.events if e["kind"] == "closed"] == ["stop_loss"]


def test_one_bad_ticker_does_not_affect_other_positions() -> None:
    exchange = FakeExchange()
    exchange.open("A", leverage=1)
    exchange.open("B", leverage=1)
    exchange.on_get_ticker = lambda s: None if s == "A" else {"last": 94.0}
    pm = make_manager(exchange)
    a, b = make_position("A", leverage=1), make_position("B", leverage=1)
    pm.positions.update({"A": a, "B": b})
    closed = list(pm.update_positions())
    assert [s for s, _, _ in closed] == ["B"]
    assert pm.positions["A"] is a
    assert list(pm.positions) == ["A"]


def test_boolean_price_is_not_a_price() -> None:
    exchange = FakeExchange()
    exchange.open("A")
    exchange.on_get_ticker = lambda s: {"last": True}
    pm = make_manager(exchange)
    a = make_position("A")
    pm.positions["A"] = a
    assert list(pm.update_positions()) == []
    assert pm.positions.get("A") is a
    assert not exchange.calls_of("close_position")


# --------------------------------------------------------------------------- get_ohlcv


BAD_OHLCV: list[tuple[str, Callable[..., Any], bool]] = [
    ("None", lambda s, **k: None, False),
    ("empty", lambda s, **k: [], False),
    ("Mock", lambda s, **k: Mock(), True),
    ("garbage rows", lambda s, **k: [[1, 2, 3], "x", None], True),
    ("string cells", lambda s, **k: [["a", "b", "c", "d", "e", "f"]] * 60, True),
    ("dict", lambda s, **k: {"close": [1, 2]}, True),
    ("string", lambda s, **k: "candles", True),
    ("raises", raising("ohlcv down"), True),
]


@pytest.mark.parametrize(("name", "ohlcv", "warns"), BAD_OHLCV, ids=[n for n, _, _ in BAD_OHLCV])
def test_bad_ohlcv_still_updates_the_position(
    caplog: pytest.LogCaptureFixture, name: str, ohlcv: Callable[..., Any], warns: bool
) -> None:
    exchange = FakeExchange()
    exchange.open("A", leverage=1)
    exchange.set_price("A", 101.0)  # a new high: the simple trailing stop moves up
    exchange.on_get_ohlcv = ohlcv
    pm = make_manager(exchange)
    a = make_position("A", leverage=1)
    pm.positions["A"] = a
    assert list(pm.update_positions()) == []
    assert pm.positions["A"] is a
    assert a.stop_loss == pytest.approx(101.0 * (1 - 0.02 * 0.8), rel=1e-12)
    assert a.highest_price == 101.0
    assert exchange.calls_of("get_ohlcv") == [(("A",), {"timeframe": "1h", "limit": 100})]
    mentioning = [w for w in warnings(caplog) if "A" in w and "OHLCV" in w]
    if warns:
        assert mentioning, warnings(caplog)
    else:
        assert not warnings(caplog)


CANDLE = [1.7e12, 100.0, 101.0, 99.0, 100.0, 5.0]


def test_only_the_last_candles_of_a_long_answer_are_read(caplog: pytest.LogCaptureFixture) -> None:
    # MAX_CANDLES (10 000) rows are read, the last ones: the unreadable first row of 10 001 is
    # never looked at (before, it made the whole answer unusable).
    exchange = FakeExchange()
    exchange.open("A", leverage=1)
    exchange.on_get_ohlcv = lambda s, **k: [["bad"]] + [CANDLE] * 10_000
    pm = make_manager(exchange)
    a = make_position("A", leverage=1)
    pm.positions["A"] = a
    assert list(pm.update_positions()) == []
    assert pm.positions["A"] is a
    assert warnings(caplog) == [
        "OHLCV data for A had 10001 candles, more than the 10000 read: using its last 10000"
    ]


HUGE_CANDLE_LIST = (
    """
row = [1.7e12, 100.0, 101.0, 99.0, 100.0, 5.0]
candles = [row] * 60_000_000  # 480 MB here; the rows copied were 2.9 GB, twice
positions = [{"symbol": "A", "contracts": 1.0, "side": "long", "entryPrice": 100.0}]
"""
    + HUGE_ANSWER_CHILD
    + """
a = Position("A", "long", 100.0, 1.0, 10, 95.0, 110.0)
pm.positions["A"] = a
print(list(pm.update_positions()), pm.positions.get("A") is a)
print(any("had 60000000 candles" in r for r in records))
"""
)


def test_a_huge_candle_list_costs_only_its_last_rows() -> None:
    # Before: the process aborted (a failed allocation, exit status 134).
    out = run_memory_limited(HUGE_CANDLE_LIST)
    assert out.splitlines() == ["[] True", "True"]


def test_raising_ohlcv_warning_text(caplog: pytest.LogCaptureFixture) -> None:
    exchange = FakeExchange()
    exchange.open("A", leverage=1)
    exchange.on_get_ohlcv = raising("ohlcv down")
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A", leverage=1)
    list(pm.update_positions())
    assert "API error getting OHLCV for A: ConnectionError: ohlcv down" in warnings(caplog)


@pytest.mark.parametrize(("name", "ohlcv", "warns"), BAD_OHLCV, ids=[n for n, _, _ in BAD_OHLCV])
def test_bad_ohlcv_exits_are_still_checked(
    name: str, ohlcv: Callable[..., Any], warns: bool
) -> None:
    exchange = FakeExchange()
    exchange.open("A", leverage=1)
    exchange.set_price("A", 94.0)  # below the stop
    exchange.on_get_ohlcv = ohlcv
    pm = make_manager(exchange)
    a = make_position("A", leverage=1)
    pm.positions["A"] = a
    closed = list(pm.update_positions())
    assert [(s, p) for s, _, p in closed] == [("A", a)]
    assert [e["reason"] for e in pm.events if e["kind"] == "closed"] == ["stop_loss"]


# --------------------------------------------------------------------------- client close_position


BAD_CLOSES: list[tuple[str, Callable[[str], Any]]] = [
    ("False", lambda s: False),
    ("None", lambda s: None),
    ("empty dict", lambda s: {}),
    ("raises", raising("close rejected")),
]


@pytest.mark.parametrize(("name", "close"), BAD_CLOSES, ids=[n for n, _ in BAD_CLOSES])
def test_failed_exchange_close_keeps_the_position(name: str, close: Callable[[str], Any]) -> None:
    exchange = FakeExchange()
    exchange.open("A", leverage=1)
    exchange.set_price("A", 94.0)
    exchange.on_close_position = close
    pm = make_manager(exchange)
    a = make_position("A", leverage=1)
    pm.positions["A"] = a
    assert list(pm.update_positions()) == []
    assert pm.positions["A"] is a
    assert pm.close_position("A") is None
    assert pm.positions["A"] is a
    assert not [e for e in pm.events if e["kind"] in ("closed", "removed")]
    assert len(exchange.calls_of("close_position")) == 2


def test_a_list_warning_is_said_once_then_every_five_minutes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A venue that keeps sending an entry the manager cannot use made the same WARNING at
    every list read; now once, then every 5 minutes of the manager's clock with how many
    times it was held back (DEBUG meanwhile), and at once when it comes back after a list
    without it."""
    from datetime import datetime

    from position_manager_rs import ManualClock

    exchange = FakeExchange()
    good = [exchange_entry("A"), exchange_entry("B")]
    bad = [exchange_entry("A", contracts="junk"), exchange_entry("B")]
    entries = bad
    exchange.on_get_open_positions = lambda: [dict(e) for e in entries]
    clock = ManualClock(datetime(2026, 12, 7, 8, 0))
    pm = make_manager(exchange, clock=clock)
    pm.positions.update({"A": make_position("A"), "B": make_position("B")})
    said = "Position entry for A is unusable (contracts is 'junk'); treating it as listed"

    def cycles(n: int) -> tuple[list[str], list[str]]:
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            for _ in range(n):
                list(pm.update_positions())
                clock.advance(seconds=10)
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
        return [m for m in warned if said in m], [m for m in debug if said in m]

    assert cycles(5) == ([said + ", changing nothing"], [said + ", changing nothing"] * 4)
    clock.advance(seconds=260)  # 5 min after it was said
    warned, _ = cycles(1)
    assert warned == [
        said + ", changing nothing (still so: held back 4 times since it was last logged)"
    ]
    entries = good
    assert cycles(1) == ([], [])
    entries = bad
    assert cycles(1) == ([said + ", changing nothing"], [])
    assert list(pm.positions) == ["A", "B"]


def test_a_repeated_entry_is_warned_about_once_whatever_its_place_in_the_list(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An entry listed twice is read once with a warning naming its place (#1, #2); a venue
    that lists its positions in another order each time moved that place, and the warning was
    said again at every read."""
    exchange = FakeExchange()
    orders = [
        [exchange_entry("A"), exchange_entry("A"), exchange_entry("B")],
        [exchange_entry("B"), exchange_entry("A"), exchange_entry("A")],
    ]
    reads = iter(range(1000))
    exchange.on_get_open_positions = lambda: [dict(e) for e in orders[next(reads) % 2]]
    pm, book = tracked_pair(exchange)
    with caplog.at_level(logging.WARNING):
        for _ in range(6):
            list(pm.update_positions())
    said = [m for m in caplog.messages if "repeats the long entry for A exactly" in m]
    assert said == ["Position entry #1 repeats the long entry for A exactly; reading it once"]
    assert_book_intact(pm, book)
