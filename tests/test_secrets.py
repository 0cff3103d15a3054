"""No credential reaches the package's log lines, events or raised errors.

ccxt's error texts quote the request's URL, and HTX signs in the query string: its
``AccessKeyId`` (the API key) and a ``Signature`` still valid for a few minutes were written into
the bot's WARNING and ERROR lines whenever a position list or an order failed (found by an audit
on 2026-12-07). Every venue's real ccxt class runs here with distinctive fake credentials against
the tests' fake venue (tests/venue_sim.py), through failed lists (503, 401), an order whose answer
was lost and a venue that went away; nothing the package logs, keeps or raises from a manager
call may hold a credential or a signature (the client's own methods, called directly, re-raise
ccxt's exception as ccxt made it). ccxt's own DEBUG logger (``ccxt.base.exchange``, which logs
request headers) is ccxt's, not the package's, and is not checked.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from venue_dialects import DIALECTS
from venue_sim import running

from position_manager_rs import PositionManager
from position_manager_rs._core import _redact_secrets
from position_manager_rs.ccxt_client import CcxtClient

pytestmark = pytest.mark.timeout(60)

FAKE = {
    "apiKey": "APIKEYzz1111",
    "secret": "SECRETzz2222",
    "password": "PASSzz3333",
    "privateKey": "0x" + "2b" * 32,
}

#: A signature's value in a query string: redacted, it is ``***``.
SIGNATURE = re.compile(r"(?i)signature=(?!\*\*\*)[^&\s'\"]+")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(f"{record.name} {record.levelname} {record.getMessage()}")


def credentials(name: str) -> tuple[dict[str, Any], list[str]]:
    """The dialect's credentials with distinctive values, and the strings that must not leak."""
    given = dict(DIALECTS[name]().credentials)
    for key in given:
        if key in FAKE:
            given[key] = FAKE[key]
    secret = [v for k, v in given.items() if k != "walletAddress"]
    return given, secret + [v[2:] for v in secret if v.startswith("0x")]


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_no_credential_reaches_the_packages_logs_events_or_errors(name: str) -> None:
    given, secrets = credentials(name)
    collect = Collect()
    loggers = [logging.getLogger(n) for n in ("TradingBot", "position_manager_rs")]
    for logger in loggers:
        logger.addHandler(collect)
        logger.setLevel(logging.DEBUG)
    raised: list[str] = []

    def step(call: Any, *, manager_call: bool = True) -> None:
        try:
            call()
        except Exception as e:
            # The client's own calls raise ccxt's exception as ccxt made it (its text is the
            # bot's to log); what the manager raises is the package's.
            if manager_call:
                raised.append(f"{type(e).__name__}: {e}")

    dialect = DIALECTS[name]()
    try:
        with running(dialect, **given) as (venue, exchange):
            client = CcxtClient(exchange, sleep=lambda _: None)
            manager = PositionManager(client, 0.02, ticker_retry_delays=(0, 0))
            market = dialect.markets[0]
            venue.ledger.open(market.symbol, "long", 4 * market.lot, market.price)
            manager.sync_existing_positions()
            for status in (503, 401):
                venue.fail_next(dialect.positions_route, status=status)
                step(lambda: list(manager.update_positions()))
            venue.fail_next(dialect.order_route, status=503)
            step(lambda: manager.close_position(market.symbol, "test"))
            venue.lose_next_order_answer()
            step(lambda: manager.close_position(market.symbol, "test"))
            step(lambda: list(manager.update_positions()))
        # The venue is gone: every call fails with the request's URL in its text.
        step(lambda: list(manager.update_positions()))
        step(lambda: client.get_ticker(market.symbol), manager_call=False)
        step(
            lambda: client.create_market_order(market.symbol, "buy", market.lot),
            manager_call=False,
        )
    finally:
        for logger in loggers:
            logger.removeHandler(collect)
            logger.setLevel(logging.NOTSET)
    failures = [t for t in collect.texts if "WARNING" in t or "ERROR" in t]
    assert failures, "the run produced failures to log"
    everything = collect.texts + raised + [json.dumps(manager.events, default=str)]
    for text in everything:
        for secret in secrets:
            assert secret not in text, (secret, text[:400])
        assert not SIGNATURE.search(text), text[:400]


def test_the_redaction_keeps_what_is_not_a_credential() -> None:
    text = (
        "htx GET http://127.0.0.1:1/linear-swap-api/v1/swap_cross_position_info?"
        "AccessKeyId=APIKEYzz1111&SignatureMethod=HmacSHA256&Timestamp=2026-12-07T01%3A00%3A00"
        '&Signature=abc%2Bdef%3D 503 {"status":"error","err_code":1017}'
    )
    assert _redact_secrets(text) == (
        "htx GET http://127.0.0.1:1/linear-swap-api/v1/swap_cross_position_info?"
        "AccessKeyId=***&SignatureMethod=HmacSHA256&Timestamp=2026-12-07T01%3A00%3A00"
        '&Signature=*** 503 {"status":"error","err_code":1017}'
    )
    plain = 'binance {"code":-2019,"msg":"Margin is insufficient."}'
    assert _redact_secrets(plain) == plain
