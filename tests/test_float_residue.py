"""Float residues of the manager's own arithmetic, against a real ccxt class over a fake venue
(``tests/venue_sim.py``): they never cost a lot, nor turn the manager's own exit into a close by
someone else."""

from __future__ import annotations

import pytest
from venue_dialects import Binance
from venue_sim import Market, running

from position_manager_rs import PositionManager
from position_manager_rs.ccxt_client import CcxtClient

pytestmark = pytest.mark.timeout(60)


class BinanceXrp(Binance):
    """Binance USD-M listing one market traded in tenths of a contract."""

    markets = (Market("XRP", 2.0, lot=0.1),)  # type: ignore[assignment]


def test_scaling_out_of_everything_on_a_large_position_is_a_close() -> None:
    # 50000.3 + 0.3 is 50000.600000000006 in floating point; the scale-out of the 50000.6 the
    # venue lists left 7e-12 contracts, above the absolute dust bound: the manager kept a
    # phantom position, recorded the exit as a partial close, and the next list's absence as a
    # close by someone else (`removed`, `closed_externally`), its P/L lost.
    with running(BinanceXrp()) as (venue, exchange):
        client = CcxtClient(exchange, sleep=lambda s: None)
        market = next(iter(venue.ledger.markets.values()))
        pm = PositionManager(client, 0.02, ticker_retry_delays=())
        assert pm.open_position(market.symbol, "BUY", 50000.3, 5) is True
        assert pm.scale_in_position(market.symbol, 0.3, market.price) is True
        position = pm.get_position(market.symbol)
        assert position is not None and position.amount != 50000.6  # the residue is there
        (listed,) = client.get_open_positions()
        assert pm.scale_out_position(market.symbol, listed["contracts"], "take_all") is not None
        assert venue.ledger.held() == []
        assert not pm.has_position(market.symbol)
        assert list(pm.update_positions()) == []
        assert list(pm.update_positions()) == []
        kinds = [e["kind"] for e in pm.events if e["symbol"] == market.symbol]
        assert kinds == ["opened", "scaled_in", "closed"]
