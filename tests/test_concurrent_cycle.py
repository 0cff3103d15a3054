"""Batched prices (``get_tickers``) and concurrent reads (``max_concurrent_calls``) through the
binding: the same closes, events, books and log records as the sequential cycle — under injected
faults (tickers missing or unusable in the batch, the batch call raising or answering garbage,
ticker and candle calls raising, timing out, lying, interruptions in any of them) — lazy
iteration, worker threads attached to the interpreter, prompt interruptions, and the defaults
unchanged (a client without ``get_tickers`` and ``max_concurrent_calls=1`` is called exactly as
before).

Every test runs under pytest-timeout: a deadlock fails, it never hangs.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from unittest.mock import Mock

import pytest
from helpers_clients import (
    DEFAULT_PRICE,
    FakeExchange,
    assert_ctrl_c_ends,
    make_manager,
    make_position,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import book_problems

from position_manager_rs import PaperExchange, PositionManager
from position_manager_rs.testing import frozen_clock

pytestmark = pytest.mark.timeout(60)

LONG = os.environ.get("PMRS_LONG") == "1"
START = datetime(2026, 1, 1, 12, 0, 0)
_DEFAULT: Any = object()


def candles(n: int = 100, drift: float = 0.001) -> list[list[float]]:
    """A gentle rise ending near the default price."""
    rows = []
    for i in range(n):
        close = DEFAULT_PRICE * (1 + drift) ** (i - n + 1)
        rows.append(
            [1_700_000_000_000 + 3_600_000 * i, close, close * 1.001, close * 0.999, close, 10]
        )
    return rows


def timed_out(*args: Any, **kwargs: Any) -> Any:
    time.sleep(0.02)
    raise TimeoutError("read timed out")


class Scripted(FakeExchange):
    """A ``FakeExchange`` whose ticker and candle answers are scripted per symbol, so they are
    the same whichever thread asks first. A script item is returned, raised (an exception
    instance) or called (a callable). ``threads`` holds the ids of the threads that read."""

    def __init__(self) -> None:
        super().__init__()
        self.ticker_script: dict[str, list[Any]] = {}
        self.candle_script: dict[str, list[Any]] = {}
        self.threads: set[int] = set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.read_delay = 0.0

    def _scripted(self, script: dict[str, list[Any]], symbol: str) -> Any:
        with self._lock:
            self.threads.add(threading.get_ident())
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            queue = script.get(symbol)
            item = queue.pop(0) if queue else _DEFAULT
        try:
            if self.read_delay:
                time.sleep(self.read_delay)
        finally:
            with self._lock:
                self.in_flight -= 1
        if isinstance(item, BaseException):
            raise item
        if callable(item):
            return item()
        return item

    def get_ticker(self, symbol: str) -> Any:
        self._enter("get_ticker", symbol)
        item = self._scripted(self.ticker_script, symbol)
        if item is _DEFAULT:
            with self._lock:
                return {"symbol": symbol, "last": self.prices.get(symbol, DEFAULT_PRICE)}
        return item

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> Any:
        self._enter("get_ohlcv", symbol, timeframe=timeframe, limit=limit)
        item = self._scripted(self.candle_script, symbol)
        return [] if item is _DEFAULT else item


class Batched(Scripted):
    """``Scripted`` with ``get_tickers``: every price at once, unless ``batch_answer`` replaces
    the whole answer (returned, raised or called) or ``batch_entries`` a symbol's entry
    (``_DEFAULT`` there: left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_answer: Any = _DEFAULT
        self.batch_entries: dict[str, Any] = {}

    def get_tickers(self, symbols: list[str]) -> Any:
        self._enter("get_tickers", list(symbols))
        answer = self.batch_answer
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer()
        if answer is not _DEFAULT:
            return answer
        out: dict[str, Any] = {}
        with self._lock:
            for symbol in symbols:
                entry = self.batch_entries.get(symbol, None)
                if entry is None:
                    out[symbol] = {"symbol": symbol, "last": self.prices.get(symbol, DEFAULT_PRICE)}
                elif entry is not _DEFAULT:
                    out[symbol] = entry
        return out


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Spec:
    price: float
    ticker: str  # see TICKER_FAULTS
    candles: str  # see CANDLE_FAULTS
    batch: str  # see BATCH_FAULTS


TICKER_FAULTS: dict[str, list[Any]] = {
    "none": [],
    "missing_once": [None],
    "error_once": [ConnectionError("reset by peer")],
    "nan_once": [{"last": math.nan}],
    "always_missing": [None, None, None],
    "interrupt": [KeyboardInterrupt()],
}
CANDLE_FAULTS: dict[str, list[Any]] = {
    "empty": [],
    "rising": [candles()],
    "error": [RuntimeError("AuthenticationError: key expired")],
    "timeout": [timed_out],
    "lies": [[["not", "a", "candle", 1, 2, 3]] * 60],
    "interrupt": [KeyboardInterrupt()],
}
BATCH_FAULTS: dict[str, Any] = {
    "price": None,
    "missing": _DEFAULT,
    "not_a_dict": "BTC",
    "other_symbol": {"symbol": "OTHER/USDT:USDT", "last": 101.0},
    "nan": {"last": math.nan},
    "bool": {"last": True},
}


def symbol(i: int) -> str:
    return f"S{i}/USDT:USDT"


def build(specs: list[Spec], batched: bool, whole_batch: Any = _DEFAULT) -> Scripted:
    client: Scripted = Batched() if batched else Scripted()
    if isinstance(client, Batched):
        client.batch_answer = whole_batch
    for i, spec in enumerate(specs):
        s = symbol(i)
        client.open(s, contracts=1.0)
        client.set_price(s, spec.price)
        client.ticker_script[s] = list(TICKER_FAULTS[spec.ticker])
        client.candle_script[s] = list(CANDLE_FAULTS[spec.candles])
        if isinstance(client, Batched):
            # A symbol whose own ticker call is scripted gets no price in the batch: the batched
            # cycle then asks it per symbol and sees what the plain cycle sees.
            fault = "missing" if spec.batch == "price" and spec.ticker != "none" else spec.batch
            client.batch_entries[s] = BATCH_FAULTS[fault]
    return client


@dataclass
class Outcome:
    steps: list[Any]
    events: list[tuple[Any, ...]]
    book: dict[str, dict[str, Any]]
    actions: list[tuple[Any, ...]]
    logs: list[tuple[str, str, str]]


def run(
    specs: list[Spec],
    *,
    batched: bool,
    workers: int,
    caplog: pytest.LogCaptureFixture,
    whole_batch: Any = _DEFAULT,
) -> Outcome:
    client = build(specs, batched, whole_batch)
    with frozen_clock(START):
        pm = make_manager(client, max_concurrent_calls=workers)
        for i in range(len(specs)):
            s = symbol(i)
            pm.positions[s] = make_position(s, stop_loss=95.0, take_profit=115.0)
        caplog.clear()
        steps: list[Any] = []
        try:
            for s, pnl, _ in pm.update_positions():
                steps.append((s, pnl))
        except KeyboardInterrupt:
            steps.append("KeyboardInterrupt")
        logs = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert not book_problems(pm)
    return Outcome(
        steps=steps,
        events=[(e["seq"], e["kind"], e["symbol"], e["reason"], e["pnl"]) for e in pm.events],
        book={s: p.to_dict() for s, p in pm.positions.items()},
        actions=[(m, a) for m, a, _ in client.calls if not m.startswith("get_")],
        logs=logs,
    )


def without_logs(o: Outcome) -> Outcome:
    return Outcome(o.steps, o.events, o.book, o.actions, [])


@pytest.fixture(autouse=True)
def _debug_records(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG, logger="TradingBot")
    yield


specs = st.lists(
    st.builds(
        Spec,
        price=st.sampled_from([100.0, 94.0, 116.0, 103.0]),
        ticker=st.sampled_from(sorted(TICKER_FAULTS)),
        candles=st.sampled_from(sorted(CANDLE_FAULTS)),
        batch=st.sampled_from(sorted(BATCH_FAULTS)),
    ),
    min_size=1,
    max_size=7,
)
whole_batches = st.sampled_from(["as_is", "raises", "a_list", "none"])
WHOLE: dict[str, Any] = {
    "as_is": _DEFAULT,
    "raises": ConnectionError("batch endpoint down"),
    "a_list": lambda: [],
    "none": lambda: None,
}


@settings(
    max_examples=400 if LONG else 40,
    derandomize=not LONG,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=specs, whole=whole_batches)
def test_batched_and_concurrent_cycles_are_the_sequential_cycle(
    caplog: pytest.LogCaptureFixture, specs: list[Spec], whole: str
) -> None:
    plain = run(specs, batched=False, workers=1, caplog=caplog)
    concurrent = run(specs, batched=False, workers=4, caplog=caplog)
    assert concurrent == plain
    batched = run(specs, batched=True, workers=1, caplog=caplog, whole_batch=WHOLE[whole])
    both = run(specs, batched=True, workers=6, caplog=caplog, whole_batch=WHOLE[whole])
    assert both == batched
    assert without_logs(batched) == without_logs(plain)


# --------------------------------------------------------------------------- the defaults


def test_a_mock_client_is_asked_exactly_as_before() -> None:
    client = Mock()
    client.get_open_positions.return_value = [
        {"symbol": "BTC/USDT:USDT", "side": "long", "contracts": 1.0, "leverage": 10}
    ]
    client.get_ticker.return_value = {"last": 100.0}
    client.get_ohlcv.return_value = []
    pm = PositionManager(client)
    pm.positions["BTC/USDT:USDT"] = make_position("BTC/USDT:USDT")
    assert list(pm.update_positions()) == []
    assert [c[0] for c in client.method_calls] == ["get_open_positions", "get_ticker", "get_ohlcv"]


def test_only_a_get_tickers_of_the_clients_own_is_used() -> None:
    class Proxy:
        """Forwards every attribute (``__getattr__``): its forwarded methods are not looked for."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    def cycle(client: Any) -> list[str]:
        inner = client.inner if isinstance(client, Proxy) else client
        pm = make_manager(client)
        inner.open("A/USDT:USDT")
        pm.positions["A/USDT:USDT"] = make_position("A/USDT:USDT")
        list(pm.update_positions())
        return [m for m, _, _ in inner.calls if m.startswith("get_ticker")]

    assert cycle(Batched()) == ["get_tickers"]
    assert cycle(Scripted()) == ["get_ticker"]
    assert cycle(Proxy(Batched())) == ["get_ticker"]
    on_the_instance = Scripted()

    def nothing(symbols: list[str]) -> dict[str, Any]:
        on_the_instance.calls.append(("get_tickers", (symbols,), {}))
        return {}

    on_the_instance.get_tickers = nothing  # type: ignore[attr-defined]
    assert cycle(on_the_instance) == ["get_tickers", "get_ticker"]  # nothing in it: per symbol
    # A replaced client is looked at again.
    pm = make_manager(Scripted())
    batched = Batched()
    pm.client = batched
    batched.open("A/USDT:USDT")
    pm.positions["A/USDT:USDT"] = make_position("A/USDT:USDT")
    list(pm.update_positions())
    assert [m for m, _, _ in batched.calls if m.startswith("get_ticker")] == ["get_tickers"]


def test_a_batched_cycle_asks_every_symbol_once_in_book_order() -> None:
    client = Batched()
    pm = make_manager(client)
    for s in ("B/USDT:USDT", "A/USDT:USDT"):
        client.open(s)
        pm.positions[s] = make_position(s)
    list(pm.update_positions())
    assert client.calls_of("get_tickers") == [((["B/USDT:USDT", "A/USDT:USDT"],), {})]
    assert not client.calls_of("get_ticker")
    # Hedge mode: both legs of a symbol, one symbol asked.
    paper = PaperExchange(seed=1, volatility=0.0, position_mode="hedge")
    btc = paper.symbols[0]
    paper.create_market_order(btc, "buy", 2, 5, position_side="long")
    paper.create_market_order(btc, "sell", 2, 5, position_side="short")
    hedge = PositionManager(paper, position_mode="hedge")
    assert hedge.sync_existing_positions() == 2
    paper.calls.clear()
    assert list(hedge.update_positions()) == []
    assert paper.calls_of("get_tickers") == [(([btc],), {})]
    assert not paper.calls_of("get_ticker")


# --------------------------------------------------------------------------- bad batches


class Exploding(Mapping[str, Any]):
    """A mapping whose reads raise."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


BAD_BATCHES: list[tuple[str, Any, str]] = [
    ("a list", lambda: [{"symbol": "A/USDT:USDT", "last": 1.0}], "not a dict of tickers"),
    ("None", lambda: None, "get_tickers answered None (NoneType), not a dict"),
    ("a str", lambda: "A/USDT:USDT", "not a dict of tickers"),
    ("a Mock", Mock, "not a dict of tickers"),
    ("an exception", ValueError("bad symbols"), "Batched prices failed (ValueError: bad symbols)"),
    ("a mapping that raises", lambda: Exploding(), "Batched prices failed (RuntimeError: boom)"),
]


@pytest.mark.parametrize(
    ("name", "answer", "warning"), BAD_BATCHES, ids=[b[0] for b in BAD_BATCHES]
)
def test_a_bad_batch_is_a_warning_and_every_price_is_asked_per_symbol(
    caplog: pytest.LogCaptureFixture, name: str, answer: Any, warning: str
) -> None:
    client = Batched()
    client.batch_answer = answer
    pm = make_manager(client)
    for s in ("A/USDT:USDT", "B/USDT:USDT"):
        client.open(s)
        pm.positions[s] = make_position(s)
    before = {s: p.to_dict() for s, p in pm.positions.items()}
    client.set_price("A/USDT:USDT", 100.1)  # the stop trails up, no exit
    assert list(pm.update_positions()) == []
    assert sorted(a[0] for a, _ in client.calls_of("get_ticker")) == ["A/USDT:USDT", "B/USDT:USDT"]
    assert set(pm.positions) == set(before)
    assert pm.positions["A/USDT:USDT"].stop_loss > before["A/USDT:USDT"]["stop_loss"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(warning in w for w in warnings), warnings


BAD_ENTRIES: list[tuple[str, Any, str]] = [
    ("a str", "100.0", "A/USDT:USDT (a str, not a ticker dict)"),
    ("a list", [100.0], "A/USDT:USDT (a list, not a ticker dict)"),
    ("another symbol", {"symbol": "B/USDT:USDT", "last": 100.0}, "(a ticker for B/USDT:USDT)"),
    ("nan", {"last": math.nan}, "('last' is nan)"),
    ("inf", {"last": math.inf}, "('last' is inf)"),
    ("negative", {"last": -3.0}, "('last' is -3.0)"),
    ("zero", {"last": 0}, "('last' is 0)"),
    ("a bool", {"last": True}, "('last' is True)"),
    ("a numeric str", {"last": "100"}, "('last' is 100)"),
    ("no last", {"symbol": "A/USDT:USDT"}, "('last' is None)"),
]


def batched_cycle(entry_of_a: Any) -> Batched:
    """One cycle over A and B on a batched client whose entry for A is ``entry_of_a``."""
    client = Batched()
    client.batch_entries["A/USDT:USDT"] = entry_of_a
    pm = make_manager(client)
    for s in ("A/USDT:USDT", "B/USDT:USDT"):
        client.open(s)
        pm.positions[s] = make_position(s)
    assert list(pm.update_positions()) == []
    return client


@pytest.mark.parametrize(("name", "entry", "why"), BAD_ENTRIES, ids=[b[0] for b in BAD_ENTRIES])
def test_an_unusable_entry_is_warned_and_its_price_asked_per_symbol(
    caplog: pytest.LogCaptureFixture, name: str, entry: Any, why: str
) -> None:
    client = batched_cycle(entry)
    assert [a for a, _ in client.calls_of("get_ticker")] == [("A/USDT:USDT",)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Batched prices: no usable price for 1 symbol(s), asking get_ticker for them: "
        + ("A/USDT:USDT " + why if why.startswith("(") else why)
    ]


def test_an_entry_left_out_is_asked_per_symbol_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = batched_cycle(_DEFAULT)
    assert [a for a, _ in client.calls_of("get_ticker")] == [("A/USDT:USDT",)]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (
        "TradingBot",
        "DEBUG",
        "Batched prices: no entry for 1 of 2 symbol(s), asking get_ticker for them: A/USDT:USDT",
    ) in [(r.name, r.levelname, r.getMessage()) for r in caplog.records]


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
def test_an_interruption_in_the_batch_call_ends_the_cycle_and_nothing_is_lost(
    kind: type[BaseException],
) -> None:
    client = Batched()
    client.batch_answer = kind()
    pm = make_manager(client, max_concurrent_calls=4)
    for s in ("A/USDT:USDT", "B/USDT:USDT"):
        client.open(s)
        pm.positions[s] = make_position(s)
    before = {s: p.to_dict() for s, p in pm.positions.items()}
    with pytest.raises(kind):
        list(pm.update_positions())
    assert {s: p.to_dict() for s, p in pm.positions.items()} == before
    assert not client.calls_of("get_ohlcv") and not book_problems(pm)
    client.batch_answer = _DEFAULT
    assert list(pm.update_positions()) == []  # the next cycle works


# --------------------------------------------------------------------------- concurrency


def tracked(client: Scripted, n: int, **options: Any) -> PositionManager:
    pm = make_manager(client, **options)
    for i in range(n):
        s = symbol(i)
        client.open(s)
        pm.positions[s] = make_position(s)
    return pm


def test_reads_run_on_worker_threads_up_to_the_limit_and_sequentially_on_the_callers() -> None:
    client = Scripted()
    client.read_delay = 0.01
    pm = tracked(client, 12, max_concurrent_calls=3)
    assert list(pm.update_positions()) == []
    assert threading.get_ident() not in client.threads
    assert len(client.threads) > 1
    assert 2 <= client.most_in_flight <= 3
    client.threads.clear()
    client.most_in_flight = 0
    pm = tracked(client, 12)
    assert list(pm.update_positions()) == []
    assert client.threads == {threading.get_ident()} and client.most_in_flight == 1


def test_a_close_reaches_the_bot_before_the_next_position_is_examined(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Scripted()
    pm = tracked(client, 8, max_concurrent_calls=4)
    client.set_price(symbol(2), 90.0)  # below its stop
    client.set_price(symbol(5), 90.0)
    seen = []
    for s, _, _ in pm.update_positions():
        calls = len(client.calls)
        headers = [r.getMessage() for r in caplog.records if "--- Position:" in r.getMessage()]
        seen.append((s, headers[-1].strip()))
        time.sleep(0.05)  # the bot's own work: nothing is called meanwhile
        assert len(client.calls) == calls
    assert seen == [
        (symbol(2), f"--- Position: {symbol(2)} (LONG) ---"),
        (symbol(5), f"--- Position: {symbol(5)} (LONG) ---"),
    ]
    assert [a[0] for a, _ in client.calls_of("close_position")] == [symbol(2), symbol(5)]


def test_a_client_may_call_the_manager_from_a_worker_thread() -> None:
    client = Scripted()
    pm = tracked(client, 6, max_concurrent_calls=3)
    seen: list[Any] = []

    def reenter(symbol_: str) -> Any:
        seen.append((len(pm.positions), pm.has_position(symbol_), pm.get_open_positions_count()))
        return candles()

    for i in range(6):
        client.candle_script[symbol(i)] = [functools.partial(reenter, symbol(i))]
    assert list(pm.update_positions()) == []
    assert seen == [(6, True, 6)] * 6


def test_an_interruption_in_a_worker_is_raised_even_if_its_position_is_gone() -> None:
    client = Scripted()
    pm = tracked(client, 4, max_concurrent_calls=4)

    def remove_and_interrupt() -> Any:
        del pm.positions[symbol(3)]
        raise KeyboardInterrupt

    client.candle_script[symbol(3)] = [remove_and_interrupt]
    with pytest.raises(KeyboardInterrupt):
        list(pm.update_positions())
    assert sorted(pm.positions) == [symbol(i) for i in range(3)]
    assert not book_problems(pm)


class _Raiser(logging.Handler):
    """Raises ``KeyboardInterrupt`` on the first record containing ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.fired = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.fired and self.text in record.getMessage():
            self.fired = True
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    "text", [f"--- Position: {symbol(2)}", "Attempt 1: API returned None", "Current P/L"]
)
def test_an_interruption_a_logging_handler_raises_ends_the_cycle_where_a_sequential_one_would(
    caplog: pytest.LogCaptureFixture, text: str
) -> None:
    outcomes = []
    for workers in (1, 4):
        client = Scripted()
        client.ticker_script[symbol(2)] = [None]
        with frozen_clock(START):
            pm = tracked(client, 5, max_concurrent_calls=workers)
            handler = _Raiser(text)
            logger = logging.getLogger("TradingBot.Position")
            logger.addHandler(handler)
            caplog.clear()
            try:
                with pytest.raises(KeyboardInterrupt):
                    list(pm.update_positions())
            finally:
                logger.removeHandler(handler)
        outcomes.append(
            (
                [(r.name, r.getMessage()) for r in caplog.records],
                {s: p.to_dict() for s, p in pm.positions.items()},
            )
        )
    assert outcomes[1] == outcomes[0]


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_ctrl_c_during_a_concurrent_cycle_reaches_the_bot_promptly() -> None:
    """Readers pausing between ticker attempts (60 s here) stop at once when Ctrl+C ends the
    cycle."""
    client = Scripted()
    pm = tracked(client, 4, max_concurrent_calls=4, ticker_retry_delays=(60.0, 60.0))
    for i in range(4):
        client.ticker_script[symbol(i)] = [None, None, None]
    assert_ctrl_c_ends(lambda: list(pm.update_positions()), after=0.3, within=5.0)
    assert len(pm.positions) == 4 and not book_problems(pm)


# --------------------------------------------------------------------------- PaperExchange


def test_paper_answers_every_price_in_one_call_and_records_it() -> None:
    paper = PaperExchange(seed=2)
    btc, eth = paper.symbols[0], paper.symbols[1]
    answer = paper.get_tickers([btc, "NOPE/USDT:USDT", eth])
    assert list(answer) == [btc, eth]
    assert answer[btc]["last"] == paper.price(btc) and answer[eth] == paper.get_ticker(eth)
    assert paper.calls[0] == ("get_tickers", ([btc, "NOPE/USDT:USDT", eth],), {})
    paper.fail_next("get_tickers")
    with pytest.raises(ConnectionError):
        paper.get_tickers([btc])


def test_a_paper_cycle_uses_the_batch_and_falls_back_when_it_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    paper = PaperExchange(seed=2, volatility=0.0)
    pm = PositionManager(paper, ticker_retry_delays=(), max_concurrent_calls=2)
    for s in paper.symbols[:3]:
        assert pm.open_position(s, "BUY", 1, 5, 0.05)
    paper.calls.clear()
    assert list(pm.update_positions()) == []
    assert [m for m, _, _ in paper.calls if m.startswith("get_ticker")] == ["get_tickers"]
    paper.calls.clear()
    paper.fail_next("get_tickers")
    assert list(pm.update_positions()) == []
    assert [m for m, _, _ in paper.calls if m.startswith("get_ticker")] == [
        "get_tickers",
        "get_ticker",
        "get_ticker",
        "get_ticker",
    ]
    assert any(
        "Batched prices failed (PaperExchangeError" in r.getMessage() for r in caplog.records
    )
