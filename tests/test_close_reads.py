"""``close_position`` outside a cycle reads only its own entries of the exchange's list, as the
original scanned the list for its symbol: other symbols' entries are not converted (their
problems are not reported by a close), while everything the safety rules rest on still holds —
the symbol's own malformed entries warn, entries naming no symbol keep the list from proving
anything, and a blind or failing list is never taken as "gone". The core's tests compare every
outcome with a read of every entry (core/src/manager/focused_tests.rs).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from helpers_clients import FakeExchange, exchange_entry, make_manager, make_position

MAIN = "TradingBot"


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger=MAIN)
    return caplog


def main_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == MAIN and r.levelno == logging.WARNING
    ]


def listing(entries: list[Any]) -> FakeExchange:
    exchange = FakeExchange()
    exchange.on_get_open_positions = lambda: list(entries)
    return exchange


def junk(symbol: str) -> dict[str, Any]:
    """An entry a full read warns about (its size is no number)."""
    return exchange_entry(symbol, contracts="junk")


def test_a_close_does_not_read_other_symbols_entries(warnings: pytest.LogCaptureFixture) -> None:
    others = [junk(f"X{i}/USDT:USDT") for i in range(300)]
    exchange = listing([*others[:150], exchange_entry("A"), *others[150:], exchange_entry("B")])
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A")
    pm.positions["B"] = make_position("B")
    warnings.clear()
    assert pm.close_position("A") is not None
    assert [s for (s,), _ in exchange.calls_of("close_position")] == ["A"]
    assert not [m for m in main_warnings(warnings) if "unusable" in m]
    # A read of every entry (the update cycle's) does report them.
    warnings.clear()
    list(pm.update_positions())
    assert len([m for m in main_warnings(warnings) if "unusable" in m]) == 300


def test_the_symbols_own_malformed_entries_still_warn(warnings: pytest.LogCaptureFixture) -> None:
    exchange = listing([junk("A"), exchange_entry("B")])
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A")
    pm.positions["B"] = make_position("B")
    warnings.clear()
    # Listed, if unreadably: present, so the close goes on.
    assert pm.close_position("A") is not None
    assert (
        "Position entry for A is unusable (contracts is 'junk'); treating it as listed, "
        "changing nothing"
    ) in main_warnings(warnings)


@pytest.mark.parametrize("nameless", ["not a dict", {"contracts": 1.0}, {"symbol": ""}])
def test_an_entry_naming_no_symbol_still_keeps_the_list_from_proving_anything(
    warnings: pytest.LogCaptureFixture, nameless: Any
) -> None:
    exchange = listing([exchange_entry("B"), nameless])
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A")
    pm.positions["B"] = make_position("B")
    warnings.clear()
    assert pm.close_position("A") is None  # A is not listed, but the list cannot prove it
    assert "A" in pm.positions and exchange.calls_of("close_position") == []
    shown = main_warnings(warnings)
    assert any(m.startswith("Skipping malformed position entry #1: ") for m in shown), shown


def test_a_blind_list_is_read_again_before_anything_is_decided() -> None:
    answers = iter([[], [exchange_entry("A"), exchange_entry("B")]])
    exchange = FakeExchange()
    exchange.on_get_open_positions = lambda: next(answers)
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A")
    pm.positions["B"] = make_position("B")
    assert pm.close_position("A") is not None  # the second read shows it: closed
    assert len(exchange.calls_of("get_open_positions")) == 2
    assert "B" in pm.positions


def test_a_failing_list_sends_nothing() -> None:
    exchange = FakeExchange()

    def down() -> Any:
        raise ConnectionError("exchange down")

    exchange.on_get_open_positions = down
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A")
    assert pm.close_position("A") is None
    assert "A" in pm.positions and exchange.calls_of("close_position") == []


def test_gone_while_others_are_listed_is_decided_on_one_request() -> None:
    exchange = listing([exchange_entry("B"), exchange_entry("C")])
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A")
    pm.positions["B"] = make_position("B")
    assert pm.close_position("A") is None  # already closed on the exchange: untracked
    assert list(pm.positions) == ["B"]
    assert len(exchange.calls_of("get_open_positions")) == 1
    assert exchange.calls_of("close_position") == []
    assert pm.events[-1]["kind"] == "removed"


class Entry(Mapping[str, Any]):
    """A position entry that is a Mapping but no dict."""

    def __init__(self, **fields: Any) -> None:
        self._fields = fields

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


class Text(str):
    pass


@pytest.mark.parametrize(
    "entry",
    [
        Entry(**exchange_entry("A")),
        exchange_entry(Text("A")),
        type("Ccxt", (dict,), {})(exchange_entry("A")),
    ],
    ids=["mapping", "str-subclass-symbol", "dict-subclass"],
)
def test_entries_of_other_shapes_are_read_in_full(entry: Any) -> None:
    exchange = listing([exchange_entry("B"), entry])
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A")
    pm.positions["B"] = make_position("B")
    assert pm.close_position("A") is not None


def test_a_symbol_with_lone_surrogates_is_found_as_the_full_read_finds_it() -> None:
    exchange = listing([exchange_entry("D\udc80"), exchange_entry("B")])
    pm = make_manager(exchange)
    pm.positions["D\udc80"] = make_position("D")
    pm.positions["B"] = make_position("B")
    key = "D\ufffd\ufffd\ufffd"  # the book's key for "D\udc80"
    assert list(pm.positions) == [key, "B"]
    assert pm.close_position(key) is not None
    assert list(pm.positions) == ["B"]
