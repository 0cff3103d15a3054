"""A stateful model test: random sequences of opens, closes, external closes, transient empty and
failed answers, size changes, syncs and save/load round trips, against a reference model of the
reconciliation rules. After every step the book must equal the model (symbols and sizes).

The model is a plain re-statement of the rules (DESIGN.md, docs/architecture.md): with
``missing_confirmations=2`` a position goes after two consecutive successful lists without it
(an empty list counts, a failed call does not; a close's own check of the list counts for its
symbol); a listed position takes the exchange's size (in a cycle and in a sync); a sync imports
what the exchange lists and the book lacks; a removed position listed again with its own or its
last listed size comes back, and so does one listed with fewer contracts (reduced meanwhile: the
entry price, always 100 here, is the same), with the listed size; a close of the manager's that
an empty list confirmed is remembered as a removed position, and one a list showing other
positions confirmed as the manager's own end: a list that shows that very position again (or it
reduced) is counted, and only ``OUTCOME_CONFIRMATIONS`` such lists in a row restore it (a list
without it starts the count again; a sync imports any other listing of the symbol, and an open
supersedes it while no list has shown it again); ``open_position`` for a symbol the
book remembers (a tombstone) or that the last list showed untracked checks the list first and
restores or imports instead of ordering; a saved and loaded book is the same book (with fresh
miss counters), and remembers the same removed positions and unconfirmed closes. Prices stay at
100 so no exit rule fires.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from typing import Any

from helpers_clients import FakeExchange, make_manager
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from position_manager_rs.testing import freeze_clock, unfreeze_clock

SYMBOLS = [f"S{i}/USDT:USDT" for i in range(4)]
CONFIRMATIONS = 2
#: The manager's default `outcome_confirmations`.
OUTCOME_CONFIRMATIONS = 2
LONG = os.environ.get("PMRS_LONG") == "1"


class Failing(Exception):
    pass


class BookMatchesModel(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        # The manager's clock stands still (no decision may depend on how long a call took).
        freeze_clock(datetime(2026, 1, 1, 12, 0, 0))
        self.exchange = FakeExchange()
        self.pm = make_manager(self.exchange, missing_confirmations=CONFIRMATIONS)
        self.model: dict[str, float] = {}  # symbol -> amount the book must hold
        self.missing: dict[str, int] = {}
        # Removed as closed externally: symbol -> (size last listed, book amount); the very same
        # size listed again restores the position (DESIGN rule 5), and so does a smaller one
        # (the same position reduced meanwhile: same side and entry), taking the listed size.
        self.buried: dict[str, tuple[float, float]] = {}
        self.last_listed: dict[str, float] = {}
        # Symbols the last list of the whole book showed (a cycle's, a sync's, an open's check).
        self.last_list: set[str] = set()
        # Closed by the manager, not yet confirmed by a list: symbol -> (size last listed, book
        # amount) at the close. The first list after the close that lists the symbol again
        # brings it back (close_unconfirmed, with the exchange's size); one that does not
        # confirms it, and an empty one (a failed read looks the same) keeps it as removed.
        self.closed: dict[str, tuple[float, float]] = {}
        # Confirmed by a list that showed other positions: the manager's own end, symbol ->
        # (its sizes as for `buried`, lists in a row that showed it again).
        self.ended: dict[str, tuple[tuple[float, float], int]] = {}
        self.dir = tempfile.mkdtemp(prefix="pmrs-model-")

    # -- the model's rules ------------------------------------------------------------------
    def _track(self, symbol: str, amount: float) -> None:
        self.model[symbol] = amount
        self.missing[symbol] = 0
        self.buried.pop(symbol, None)  # a new position supersedes the tombstone
        self.ended.pop(symbol, None)

    def _closed_list(self, listed: dict[str, float], only: str | None = None) -> None:
        for symbol in list(self.closed):
            if only is not None and symbol != only:
                continue
            kept = self.closed.pop(symbol)
            if symbol in listed:
                self._track(symbol, listed[symbol])
                self.last_listed[symbol] = listed[symbol]
            elif not listed:
                self.buried[symbol] = kept
            else:
                self.ended[symbol] = (kept, 0)

    def _ended_list(
        self, listed: dict[str, float], imports: bool, only: str | None = None
    ) -> set[str]:
        """What a list does to the manager's own ends: the very position (or it reduced) is
        counted and restored at the count; a list without it starts the count again; another
        listing of the symbol is imported by a sync, left alone by a cycle. Returns the listed
        symbols it decided on."""
        decided = set()
        for symbol, (kept, lists) in list(self.ended.items()):
            if only is not None and symbol != only:
                continue
            contracts = listed.get(symbol)
            back = self._restores(kept, contracts)
            if contracts is not None:
                decided.add(symbol)
            if contracts is None:
                self.ended[symbol] = (kept, 0)
            elif back is not None:
                if lists + 1 >= OUTCOME_CONFIRMATIONS:
                    self._track(symbol, back)
                else:
                    self.ended[symbol] = (kept, lists + 1)
            elif imports:
                self._track(symbol, contracts)
                self.last_listed[symbol] = contracts
        return decided

    @staticmethod
    def _restores(buried: tuple[float, float], contracts: float | None) -> float | None:
        """The amount a removed position comes back with when ``contracts`` are listed."""
        seen, amount = buried
        if contracts is None:
            return None
        if contracts in buried:
            return amount
        return contracts if contracts < max(seen, amount) else None

    def _apply_list(self, listed: dict[str, float]) -> None:
        for symbol in list(self.model):
            if symbol in listed:
                self.missing[symbol] = 0
                self.model[symbol] = listed[symbol]
                self.last_listed[symbol] = listed[symbol]
            else:
                self.missing[symbol] = self.missing.get(symbol, 0) + 1
                if self.missing[symbol] >= CONFIRMATIONS:
                    seen = self.last_listed.get(symbol, self.model[symbol])
                    self.buried[symbol] = (seen, self.model[symbol])
                    del self.model[symbol]
                    del self.missing[symbol]
        for symbol, buried in list(self.buried.items()):
            back = self._restores(buried, listed.get(symbol))
            if symbol not in self.model and back is not None:
                del self.buried[symbol]
                self.model[symbol] = back
                self.missing[symbol] = 0
        self._ended_list(listed, imports=False)
        self._closed_list(listed)
        self.last_list = set(listed)

    def _sync_list(self, listed: dict[str, float], only: str | None = None) -> None:
        """A sync's list (or an open's check of one symbol): listed positions take the
        exchange's size, removed ones listed again come back, untracked ones are imported."""
        decided = self._ended_list(listed, imports=True, only=only)
        self._closed_list(listed, only)
        for symbol, contracts in listed.items():
            if (only is not None and symbol != only) or symbol in decided:
                continue
            if symbol in self.model:
                self.model[symbol] = contracts
                self.missing[symbol] = 0
                self.last_listed[symbol] = contracts
                continue
            buried = self.buried.get(symbol)
            back = None if buried is None else self._restores(buried, contracts)
            if back is not None:
                self._track(symbol, back)  # restored, not imported
            else:
                self._track(symbol, contracts)
            self.last_listed[symbol] = contracts
        self.last_list = set(listed)

    def _held(self) -> dict[str, float]:
        return {s: float(p["contracts"]) for s, p in self.exchange.positions.items()}

    # -- operations -------------------------------------------------------------------------
    @rule(symbol=st.sampled_from(SYMBOLS), amount=st.sampled_from([1.0, 2.0, 3.0]))
    def open(self, symbol: str, amount: float) -> None:
        was_tracked = symbol in self.model
        held = self._held()
        if not was_tracked and self.ended.get(symbol, ((0.0, 0.0), 1))[1] == 0:
            # The manager's own end no list has shown again: the open supersedes it unchecked.
            del self.ended[symbol]
        checks = not was_tracked and (
            symbol in self.ended
            or symbol in self.buried
            or symbol in self.last_list
            or symbol in self.closed
        )
        ok = self.pm.open_position(symbol, "BUY", amount, 10)
        if was_tracked:
            assert not ok  # refused for a tracked symbol
            return
        if checks:
            # The list is read first: a held position is restored or imported, not ordered.
            self._sync_list(held, only=symbol)
            if symbol in held:
                assert not ok
                return
            self.buried.pop(symbol, None)  # gone for good: a new position supersedes it
            self.ended.pop(symbol, None)
        assert ok
        # The book holds what the order filled (an untracked position the venue already had is
        # netted there; the next list brings the book to the venue's size).
        self._track(symbol, amount)
        self.last_listed.pop(symbol, None)

    @rule(symbol=st.sampled_from(SYMBOLS))
    def close(self, symbol: str) -> None:
        listed = symbol in self.exchange.positions
        held = self._held()
        pnl = self.pm.close_position(symbol)
        if symbol in self.model and listed:
            assert pnl is not None
            # The close's own read of the list gives the position the exchange's size first.
            amount = held[symbol]
            self.closed[symbol] = (amount, amount)
            del self.model[symbol]
            self.missing.pop(symbol, None)
            self.last_listed.pop(symbol, None)
        elif symbol in self.model:
            # Not listed: the close's own check counts as one more list without it; removed
            # once the policy's count is reached, never closed blind.
            assert pnl is None
            self.missing[symbol] = self.missing.get(symbol, 0) + 1
            if self.missing[symbol] >= CONFIRMATIONS:
                seen = self.last_listed.get(symbol, self.model[symbol])
                self.buried[symbol] = (seen, self.model[symbol])
                del self.model[symbol]
                del self.missing[symbol]
        else:
            assert pnl is None

    @rule(symbol=st.sampled_from(SYMBOLS))
    def external_close(self, symbol: str) -> None:
        self.exchange.drop(symbol)

    @rule(symbol=st.sampled_from(SYMBOLS), contracts=st.sampled_from([0.5, 1.5, 4.0]))
    def external_resize(self, symbol: str, contracts: float) -> None:
        if symbol in self.exchange.positions:
            self.exchange.positions[symbol]["contracts"] = contracts

    @rule(symbol=st.sampled_from(SYMBOLS))
    def external_open(self, symbol: str) -> None:
        if symbol not in self.exchange.positions:
            self.exchange.open(symbol, contracts=1.0)

    @rule()
    def cycle(self) -> None:
        assert list(self.pm.update_positions()) == []
        self._apply_list(self._held())

    @rule()
    def cycle_with_transient_empty_list(self) -> None:
        self.exchange.on_get_open_positions = list
        try:
            assert list(self.pm.update_positions()) == []
        finally:
            self.exchange.on_get_open_positions = None
        self._apply_list({})

    @rule()
    def cycle_with_failed_list(self) -> None:
        def fail() -> Any:
            raise Failing("exchange down")

        self.exchange.on_get_open_positions = fail
        try:
            assert list(self.pm.update_positions()) == []
        finally:
            self.exchange.on_get_open_positions = None

    @rule()
    def sync(self) -> None:
        self.pm.sync_existing_positions()
        self._sync_list(self._held())

    @rule()
    def save_and_load(self) -> None:
        path = os.path.join(self.dir, "state.json")
        assert self.pm.save_state(path) == len(self.model)
        self.pm = make_manager(self.exchange, missing_confirmations=CONFIRMATIONS)
        assert self.pm.load_state(path) == len(self.model)
        self.missing = dict.fromkeys(self.model, 0)
        # The manager's own ends are saved, their counts start again from none.
        self.ended = {s: (kept, 0) for s, (kept, _) in self.ended.items()}
        # Tombstones (with what the exchange last listed for each) and closes awaiting
        # confirmation are saved and loaded; what the exchange last reported for a tracked
        # position and the last list are not.
        self.last_listed.clear()
        self.last_list = set()

    def teardown(self) -> None:
        unfreeze_clock()

    # -- the property -----------------------------------------------------------------------
    @invariant()
    def book_equals_model(self) -> None:
        book = {s: p.amount for s, p in self.pm.get_all_positions().items()}
        assert book == self.model
        for symbol, position in self.pm.get_all_positions().items():
            assert position.symbol == symbol


BookMatchesModel.TestCase.settings = settings(
    max_examples=400 if LONG else 40,
    stateful_step_count=40 if LONG else 25,
    deadline=None,
    derandomize=not LONG,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_book_matches_the_model = BookMatchesModel.TestCase
