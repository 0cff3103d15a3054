"""``CcxtClient``: the exchange client ``PositionManager`` needs, on top of any ccxt exchange.

Wrap a configured ccxt (synchronous) exchange object and hand the wrapper to the manager::

    import ccxt
    from position_manager_rs import PositionManager
    from position_manager_rs.ccxt_client import CcxtClient

    exchange = ccxt.binanceusdm({"apiKey": "...", "secret": "..."})
    manager = PositionManager(CcxtClient(exchange))

The adapter is pure duck typing: this module never imports ccxt (the package works without it);
anything with ccxt's unified method names works (``fetch_positions``, ``fetch_ticker``,
``fetch_ohlcv``, ``create_order``, ``fetch_order``, ``cancel_order``, ``set_leverage``,
``load_markets``, plus the ``has`` and ``precisionMode`` attributes).

Failure semantics (the point of this adapter):

* Reads raise on failure (``get_open_positions``, ``get_ticker``, ``get_ohlcv``,
  ``get_market_limits``): an exception means "unknown". In particular ``get_open_positions`` never
  answers ``[]`` for an error, since an empty list tells the manager every position is gone: the
  answer of each ``fetch_positions`` request is checked to be the venue's position list (ccxt
  reads an HTML page or another endpoint's answer as ``[]``), and an entry whose size or side
  cannot be read is listed as presence only, never dropped as flat (docs/ccxt-client.md).
  A price of another market is none: ``get_ticker`` raises for a ticker that names another
  market than the one asked about (``ticker_names_other``; ccxt parses the first ticker of
  the venue's answer, whichever it is) and, on Hyperliquid, for prices ccxt matched to their
  markets by place in lists that do not line up; ``get_ohlcv`` raises for candles that are
  not the timeframe's (``candle_problem``).
* Orders: a *definitive rejection* by the exchange (a ccxt ``InvalidOrder``,
  ``InsufficientFunds`` or ``BadRequest``, including their subclasses such as ``OrderNotFound``,
  ``BadSymbol`` or ``OrderImmediatelyFillable``) returns ``None``: nothing was placed. Any other
  failure (network error, timeout, rate limit, 5xx, an unclassified exchange error) is an
  *unknown outcome* and is raised: the order may exist, so the caller must re-check the exchange
  rather than assume nothing happened.
* ``close_position`` returns ``True`` only when a reduce-only order was accepted, ``False`` when
  there is no open position to close or the close order was definitively rejected, and raises
  when the outcome is unknown. It never reports a close that did not happen.

Client order ids (``client_order_ids = True``): the order methods take ``client_order_id=ID``
and send it as ccxt's unified ``params={'clientOrderId': ID}``; ``get_order_by_client_id(ID,
symbol)`` looks the order up (``fetch_order(None, symbol, {'clientOrderId': ID})``): the order
dict, ``None`` when the exchange has no such order (``OrderNotFound``), and it raises when it
cannot tell. An id is sent at most once by one adapter instance (a second order with it raises
``DuplicateClientOrderId`` without a request, since some venues — Binance — only refuse an id
that is still *open*); a venue's own duplicate refusal raises too. Right after an order with an
unknown outcome the venue may not know the id yet, so for ids this instance sent less than
``not_found_grace`` seconds ago "not found" raises instead of answering ``None``.

Position legs (``position_legs = True``): every entry of ``get_open_positions`` carries ccxt's
unified ``side`` ('long'/'short') and ``hedged`` (a bool: whether the venue holds the symbol in
hedge mode, read from the venue's own fields when ccxt leaves it ``None``). Whenever the account is
in hedge mode every order names its leg in the venue's own terms (ccxt's ``hedged`` parameter,
which becomes Binance/BingX/KuCoin ``positionSide``, Bybit ``positionIdx``, OKX ``posSide``,
Bitget ``tradeSide``; HTX ``position_side``; MEXC's side codes; Gate's reduce-only sign), so a
close or a reduction takes exactly the leg it was meant for. ``close_position(symbol,
side='long')`` closes that leg only; ``close_position(symbol)`` with both legs open closes
nothing (``False``).

Venues (see docs/ccxt-client.md for the table; each is tested against a fake venue answering in
its documented format): KuCoin orders carry the requested leverage; Hyperliquid market orders
carry the ticker price (ccxt bounds the fill by its slippage); BingX and MEXC leverage is set per
leg, OKX and Bitget isolated leverage per leg in hedge mode; Gate cross positions report and get
their cross leverage, dual-mode leverage goes to its ``dual_comp`` path; an entry of a market ccxt
does not know triggers one reload of the markets and is kept (warned once per symbol) if still
unknown. Client order ids take the venue's form (Gate ``t-``, Hyperliquid a 128-bit hex cloid,
HTX an integer, BingX lower case; answers carry the caller's id) and are looked up where the venue
keeps them (Bybit ``orderLinkId`` in its realtime list, then its order history; BingX and MEXC
by their own endpoints, since ccxt sends an order id of ``None`` there; Gate, past the 60 s its
look-up by custom id works for after an order ends, in the contract's list of finished orders).
Venue refusals ccxt leaves unmapped (OKX 51xxx, Bitget 22002, Hyperliquid per-order errors) are
rejections; a venue's own "outcome unknown" codes (OKX 51149, KuCoin 408000, Bybit 170146 and
170035; ccxt maps some to a rejection class) and an order answer without an order id are
unknown outcomes; a venue's refusal of a client order id it holds (Bybit 110072, Bitget 40757,
HTX 1067, MEXC 603) raises ``DuplicateClientOrderId``; MEXC side codes are unified to buy/sell.

A ``ccxt.async_support`` exchange is refused with a ``TypeError``: use
``position_manager_rs.aio.AsyncCcxtClient``. The adapter adds no retries of its own. ccxt's
``maxRetriesOnFailure`` option (it re-sends a request that failed with a timeout or a 5xx)
applies to reads only: every order and cancel is sent with it at 0 (in its params, or in ccxt's
options of the venue's order paths where the params do not reach the request: OKX, Hyperliquid,
MEXC cancels), since a re-sent order whose answer was lost would be a second order; an unknown
outcome is looked up by its client order id instead. ccxt's ``timeout`` bounds one HTTP
request, and one call of the adapter may make several.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Callable

from . import _position_answers as answers
from ._core import _redact_secrets
from .protocols import DuplicateClientOrderId

__all__ = [
    "DEFINITIVE_REJECTIONS",
    "TERMINAL_ORDER_STATUSES",
    "CcxtClient",
    "candle_problem",
    "close_amount",
    "entry_hedged",
    "entry_side",
    "is_async_exchange",
    "is_definitive_rejection",
    "is_duplicate_client_order_id",
    "order_client_id",
    "other_order",
    "ticker_names_other",
]

#: Names of the ccxt exception classes (or their ancestors) that mean "the exchange refused the
#: request and nothing was done": an order call failing with one of them returns ``None``.
DEFINITIVE_REJECTIONS: frozenset[str] = frozenset(
    {"InvalidOrder", "InsufficientFunds", "BadRequest"}
)

#: ccxt order statuses after which an order never fills any further.
TERMINAL_ORDER_STATUSES: frozenset[str] = frozenset({"closed", "canceled", "expired", "rejected"})
#: ``TERMINAL_ORDER_STATUSES`` with the British spelling some venues' answers keep.
_ENDED_STATUSES: frozenset[str] = TERMINAL_ORDER_STATUSES | {"cancelled"}

# ccxt's ``precisionMode`` values (ccxt.base.decimal_to_precision), copied so that this module
# does not import ccxt.
_DECIMAL_PLACES = 2
_SIGNIFICANT_DIGITS = 3
_TICK_SIZE = 4

_STATUS_KEYS = (
    "id",
    "status",
    "filled",
    "remaining",
    "amount",
    "price",
    "average",
    "cost",
    "timestamp",
)


def _said(error: BaseException) -> str:
    """``error``'s text for a log line, its credentials taken out: some venues sign in the
    query string (HTX's ``AccessKeyId`` and ``Signature``) and ccxt's error texts quote the
    request's URL (``_redact_secrets``)."""
    return _redact_secrets(str(error))


def is_definitive_rejection(error: BaseException) -> bool:
    """Whether ``error`` is a ccxt exception meaning "the exchange refused; nothing was placed".

    True for ccxt's ``InvalidOrder``, ``InsufficientFunds`` and ``BadRequest`` and their
    subclasses. Classified by the names of the exception's ccxt classes, so ccxt is not imported.
    """
    for cls in type(error).__mro__:
        if cls.__name__ in DEFINITIVE_REJECTIONS and cls.__module__.split(".")[0] == "ccxt":
            return True
    return False


def _is_ccxt_error(error: BaseException, name: str) -> bool:
    """Whether ``error`` is ccxt's exception class ``name`` or a subclass of it (by name)."""
    return any(
        cls.__name__ == name and cls.__module__.split(".")[0] == "ccxt"
        for cls in type(error).__mro__
    )


def _venue_body(error: BaseException) -> Any:
    """The JSON body ccxt quotes in a venue error's message (``"<id> {...}"``), else ``None``."""
    text = str(error)
    start = text.find("{")
    if start < 0:
        return None
    try:
        return json.loads(text[start:])
    except ValueError:
        return None


#: Venues that find an order by its client order id only while it is open and for this many
#: seconds after it ends (Gate's custom ``text``): a later "not found" proves nothing by itself,
#: so the look-up then reads the venue's list of finished orders (see ``_finished_order``).
_CLIENT_ID_WINDOWS: dict[str, float] = {"gate": 60.0, "gateio": 60.0}

#: Venues whose look-up by client order id answers an id they do not know with a success that
#: holds no order (KuCoin futures: ``data`` null), which ccxt parses into an order without id
#: or status. Elsewhere such an answer is not "no such order" (ccxt parses an HTX error whose
#: code it does not map into that form; OKX's "not found" is its code 51603): the look-up cannot
#: tell. (MEXC's look-up is the client's own, ``_mexc_order_by_external_oid``.)
_EMPTY_ANSWER_IS_NOT_FOUND = frozenset({"kucoinfutures", "kucoin"})

#: How many of a contract's newest finished orders that list read reads (Gate's default page;
#: its maximum is 1,000).
FINISHED_ORDERS_PAGE = 100

#: Seconds the venue's clock may run behind ours: a page of finished orders proves an order
#: absent only when it reaches this far further back than the order was sent.
_CLOCK_SKEW = 60.0

#: Venue refusal codes ccxt leaves unmapped (a bare ``ExchangeError``) that place nothing.
_UNMAPPED_REFUSALS: dict[str, frozenset[str]] = {
    "bitget": frozenset({"22002"}),  # No position to close
}

#: Venue codes answering an order whose outcome is unknown: the venue may have placed it. ccxt
#: maps some of them to a rejection class, or they fall under a venue's refusal codes
#: (``_venue_refusal``); they are checked first, so such an order raises (unknown outcome) and
#: its client order id is looked up, never taken as refused. Read in ccxt 4.5.90's exception
#: maps of the ten venues (docs/ccxt-client.md) for codes about an order whose message says
#: timeout, try again, busy or status unknown; left out, as refusals that place nothing: Bybit
#: 176018/176019 ("Settlement in progress", "Liquidation in progress"), MEXC 513 ("Invalid
#: request, please try again later": MEXC's request outside its time window), and codes of
#: cancels (Bybit 170147 "Order cancellation timeout": ``cancel_order`` answers False on any
#: failure anyway) or of earn and transfer products.
_UNKNOWN_OUTCOMES: dict[str, frozenset[str]] = {
    # sCode 51149 "Order timed out. Please try again." (OKX's error code list; not in ccxt's
    # map, so it fell under the 51xxx refusals; NautilusTrader's OKX adapter takes it for an
    # unknown outcome).
    "okx": frozenset({"51149"}),
    # 408000 "Network timeout, please try again later" (ccxt: BadRequest).
    "kucoinfutures": frozenset({"408000"}),
    "kucoin": frozenset({"408000"}),
    # 170146 "Order creation timeout" (ccxt: InvalidOrder); 170035 "Submitted to the system
    # for processing!" (ccxt: BadRequest).
    "bybit": frozenset({"170146", "170035"}),
}

#: Venue codes refusing an order for its client order id, which the venue already holds, that
#: ccxt maps to a plain rejection or leaves unmapped (``is_duplicate_client_order_id`` reads
#: the message of the others): such an order may exist, so the refusal raises
#: ``DuplicateClientOrderId`` (never ``None``).
_DUPLICATE_ID_CODES: dict[str, frozenset[str]] = {
    "bybit": frozenset({"110072"}),  # "OrderLinkedID is duplicate" (ccxt: InvalidOrder)
    # 40757 "Duplicate clientOid" (not in ccxt's map: ExchangeError)
    "bitget": frozenset({"40757"}),
    # 1067 "The client_order_id field is invalid. Please re-enter." (ccxt: InvalidOrder): the
    # client always sends a well-formed id (a positive 52-bit integer), so on an order that
    # carries one the code is its refusal as used.
    "htx": frozenset({"1067"}),
    "huobi": frozenset({"1067"}),
    "mexc": frozenset({"603"}),  # "Repeated request" (ccxt: BadRequest)
}

#: The ccxt params of every order-placing and cancel call: ccxt's ``fetch2`` re-sends a request
#: that failed with an ``OperationFailed`` (a timeout, a 5xx) as often as its
#: ``maxRetriesOnFailure`` option says, read from the request's params first (and taken out of
#: them before the request is signed): an order whose answer was lost would be sent again, with
#: the same client order id (Binance takes a filled order's id again), without a look-up. The
#: client looks an unknown outcome up itself; ccxt's retries apply to reads only.
_NO_RETRIES: dict[str, Any] = {"maxRetriesOnFailure": 0}
#: Venues whose ccxt class does not hand the params of an order or a cancel to ``fetch2`` as
#: the request's own: OKX sends a list of orders (``trade/batch-orders``; the param would reach
#: OKX inside the order and ``fetch2`` would read the exchange-wide option), Hyperliquid builds
#: a signed action from them (``exchange``), MEXC cancels with a list of ids (``order/cancel``).
#: There the retries are turned off with ccxt's own per-endpoint option,
#: ``exchange.options[path]['maxRetriesOnFailure'] = 0``, which ``fetch2`` reads before the
#: exchange-wide one; the client sets it on the venue's order and cancel paths before each call.
_NO_RETRY_PATHS: dict[str, tuple[str, ...]] = {
    "okx": ("trade/batch-orders", "trade/order", "trade/cancel-order"),
    "hyperliquid": ("exchange",),
    "mexc": ("order/create", "order/cancel"),
}


def _page_covers(page: list[Mapping[str, Any]], sent_wall: float | None) -> bool:
    """Whether a page of a contract's newest finished orders holds every finished order sent
    since ``sent_wall`` (wall-clock seconds; ``None``: unknown): a page shorter than it could be
    holds them all; a full one, those created since its oldest order, which must come
    ``_CLOCK_SKEW`` before the send. An unreadable creation time proves nothing."""
    if len(page) < FINISHED_ORDERS_PAGE:
        return True
    if sent_wall is None:
        return False
    oldest = math.inf
    for row in page:
        created = _number(row.get("create_time"))
        if created is None or not math.isfinite(created):
            return False
        oldest = min(oldest, created)
    return oldest <= sent_wall - _CLOCK_SKEW


def _venue_refusal(venue: str, error: BaseException) -> bool:
    """Whether a bare ccxt ``ExchangeError`` is the venue's definitive refusal of an order.

    OKX: a batch answer ``code`` 1 whose orders each carry a trade-rule ``sCode`` (51xxx: no
    position in that direction, lot size, ...); ccxt maps only some of those. Hyperliquid: an
    ``ok`` answer whose every order status is an ``error``. Bitget: the codes of
    ``_UNMAPPED_REFUSALS``. The venues' "outcome unknown" codes (``_UNKNOWN_OUTCOMES``: OKX
    51149) are no refusals: ``_venue_unknown_outcome`` is asked first.
    """
    if not _is_ccxt_error(error, "ExchangeError"):
        return False
    body = _venue_body(error)
    if not isinstance(body, Mapping):
        return False
    if venue == "hyperliquid":
        # An "ok" answer whose every order status is an error: nothing was placed.
        response = body.get("response")
        data = response.get("data") if isinstance(response, Mapping) else None
        statuses = data.get("statuses") if isinstance(data, Mapping) else None
        if str(body.get("status")) != "ok" or not isinstance(statuses, list) or not statuses:
            return False
        return all(isinstance(one, Mapping) and "error" in one for one in statuses)
    if venue == "okx":
        data = body.get("data")
        if str(body.get("code")) != "1" or not isinstance(data, list) or not data:
            return False
        return all(
            isinstance(one, Mapping) and str(one.get("sCode", "")).startswith("51") for one in data
        )
    return str(body.get("code")) in _UNMAPPED_REFUSALS.get(venue, frozenset())


def _venue_codes(error: BaseException) -> set[str]:
    """The error codes of the venue answer ccxt quotes in ``error``'s message: its ``code``
    (Bybit ``retCode``, HTX v1 ``err_code``) and each order's ``sCode`` (OKX)."""
    body = _venue_body(error)
    if not isinstance(body, Mapping):
        return set()
    codes = {
        str(body[key])
        for key in ("code", "retCode", "ret_code", "err_code", "err-code")
        if body.get(key) is not None
    }
    data = body.get("data")
    for one in data if isinstance(data, list) else ():
        if isinstance(one, Mapping) and one.get("sCode") is not None:
            codes.add(str(one["sCode"]))
    return codes


def _venue_unknown_outcome(venue: str, error: BaseException) -> bool:
    """Whether a ccxt error answering an order is one of the venue's codes meaning "outcome
    unknown" (``_UNKNOWN_OUTCOMES``), whatever class ccxt raised for it."""
    known = _UNKNOWN_OUTCOMES.get(venue)
    if not known or not _is_ccxt_error(error, "BaseError"):
        return False
    return not known.isdisjoint(_venue_codes(error))


def is_duplicate_client_order_id(error: BaseException, venue: str | None = None) -> bool:
    """Whether ``error`` is an exchange's refusal of a client order id it has already seen.

    ccxt's ``DuplicateOrderId``, or a ccxt ``InvalidOrder``/``BadRequest`` whose message says
    so (Binance USD-M ``-4116 ClientOrderId is duplicated``, mapped by ccxt to ``InvalidOrder``;
    Bybit ``110072 OrderLinkedID is duplicate``), or, given the ccxt id of the ``venue`` that
    answered, a ccxt error carrying one of that venue's codes for it (``_DUPLICATE_ID_CODES``:
    Bybit 110072, Bitget 40757, HTX 1067, MEXC 603).
    """
    if _is_ccxt_error(error, "DuplicateOrderId"):
        return True
    codes = _DUPLICATE_ID_CODES.get(venue or "")
    if codes and _is_ccxt_error(error, "BaseError") and not codes.isdisjoint(_venue_codes(error)):
        return True
    if not is_definitive_rejection(error):
        return False
    text = str(error).lower()
    return "duplicat" in text and (
        "clientorderid" in text
        or "client order id" in text
        or "clientoid" in text
        or "orderlinkedid" in text
        or "orderlinkid" in text
        or "-4116" in text
    )


def _leverage_unchanged(error: BaseException) -> bool:
    """Whether a leverage change was refused only because the leverage is already that value
    (Bybit ``110043 leverage not modified``)."""
    text = str(error).lower()
    return _is_ccxt_error(error, "BaseError") and (
        "110043" in text or "leverage not modified" in text
    )


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a real number or a numeric string, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _listed_size(contracts: Any) -> bool:
    """Whether ``contracts`` is a size the manager lists a position with: a finite number > 0
    (not a bool)."""
    size = _number(contracts)
    return size is not None and math.isfinite(size) and size > 0


def close_amount(listed: float, contracts: float, step: float | None) -> float:
    """The amount a close sends when the list shows ``listed`` and the manager ``contracts``
    (both > 0), on a market whose amount step is ``step`` (``None`` or <= 0: unknown).

    ``listed`` when the two are within half a step (without a step: within a billionth of the
    list's size); otherwise ``contracts``, the manager's size, rounded to the nearest whole step
    and written exactly as that many steps (ccxt truncates amounts to the precision, so a binary
    residue such as 0.019999999999999997 would lose a whole step). The list lags the manager's
    own fills either way: a reduction (it shows more) or an increase (a scale-in: it shows less).
    Never 0.
    """
    if step is not None and not (math.isfinite(step) and step > 0):
        step = None
    if abs(contracts - listed) < (step / 2 if step is not None else listed * 1e-9):
        return listed
    if step is None:
        return contracts
    amount = float(round(contracts / step) * Decimal(repr(step)))
    return amount if amount > 0 else listed


def is_async_exchange(exchange: Any) -> bool:
    """Whether ``exchange`` is an asyncio ccxt exchange (``ccxt.async_support``, ``ccxt.pro``).

    Its methods answer coroutines, which a synchronous caller would never run.
    """
    module = type(exchange).__module__ or ""
    if module.startswith(("ccxt.async_support", "ccxt.pro")):
        return True
    method = getattr(type(exchange), "fetch_positions", None)
    return method is not None and inspect.iscoroutinefunction(method)


#: ccxt exchange ids that take ccxt's unified ``hedged`` order parameter and name the leg from
#: it (Binance ``positionSide``, KuCoin ``positionSide``, Bybit ``positionIdx``, OKX ``posSide``,
#: Bitget ``tradeSide``, BingX ``positionSide``). HTX linear swaps take ``position_side`` (v5).
_HEDGED_PARAM_VENUES = frozenset(
    {
        "binance",
        "binanceusdm",
        "binancecoinm",
        "kucoin",
        "kucoinfutures",
        "bybit",
        "okx",
        "bitget",
        "bingx",
    }
)
#: Venues without ``fetch_position_mode`` whose position list for one symbol shows its mode even
#: when flat (Bybit lists a zero-size entry per leg: ``positionIdx`` 0, or 1 and 2).
_MODE_FROM_SYMBOL_LIST = frozenset({"bybit"})
#: Venues without a hedge mode: every entry is one-way.
_ONE_WAY_VENUES = frozenset({"hyperliquid"})
# Venues where a symbol has a margin mode of its own and an order naming another one is
# refused, with a default the venue takes when the order names none (KuCoin futures: ISOLATED,
# refused with 330005 on a cross symbol; ccxt issue 25592): every order names the symbol's.
_SYMBOL_MARGIN_VENUES = frozenset({"kucoinfutures", "kucoin"})
_MARGIN_MODE_REFUSAL = "330005"  # KuCoin: the order's margin mode is not the symbol's
_SYMBOL_MARGIN_DEFAULT = "isolated"  # KuCoin: the mode of an order that names none
# Venues where every order names a margin mode and acts only on a position in that mode (OKX
# tdMode, Bitget marginMode, MEXC openType, HTX margin_mode): an order on a listed position
# names the position's own mode, a new position the client's ``margin_mode``.
_ORDER_MARGIN_VENUES = frozenset({"okx", "bitget", "mexc", "htx", "huobi"})
# Venues whose leverage change names a margin mode and cannot switch a position's (Hyperliquid's
# updateLeverage ``isCross``): the change before an order on a listed position names its mode.
_LEVERAGE_MARGIN_VENUES = _ORDER_MARGIN_VENUES | {"hyperliquid"}
#: Venues among those whose margin mode is the symbol's, both legs' in hedge mode (Bitget: its
#: ``set-margin-mode`` names a symbol and no side), not each position's.
_SYMBOL_MODE_VENUES = frozenset({"bitget"})
#: Venues whose orders carry ``marginMode`` (the two kinds above).
_NAMED_MARGIN_VENUES = _ORDER_MARGIN_VENUES | _SYMBOL_MARGIN_VENUES
#: Venues whose ccxt class has ``fetch_position_mode`` without declaring it in ``has`` in some
#: ccxt versions (OKX: 4.5.64 leaves ``fetchPositionMode`` out; 4.5.90 declares it).
_UNDECLARED_POSITION_MODE_VENUES = frozenset({"okx"})
#: Venues whose ccxt class needs a price for a market order (it bounds the fill by a slippage).
_PRICED_MARKET_ORDER_VENUES = frozenset({"hyperliquid"})
#: MEXC's order side codes: (reduces, leg) -> code (1 open long, 2 close short, 3 open short,
#: 4 close long), as MEXC documents them.
_MEXC_SIDES = {(False, "long"): 1, (True, "short"): 2, (False, "short"): 3, (True, "long"): 4}

# (key in the venue's raw entry, values meaning one-way, values meaning hedge mode)
_HEDGE_FIELDS: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = (
    ("positionSide", frozenset({"BOTH"}), frozenset({"LONG", "SHORT"})),  # Binance, BingX, KuCoin
    ("posSide", frozenset({"net"}), frozenset({"long", "short"})),  # OKX
    ("positionIdx", frozenset({"0"}), frozenset({"1", "2"})),  # Bybit
    ("mode", frozenset({"single"}), frozenset({"dual_long", "dual_short"})),  # Gate
    ("position_mode", frozenset({"single_side"}), frozenset({"dual_side"})),  # HTX
    ("position_side", frozenset({"both"}), frozenset({"long", "short"})),  # HTX (v5)
    ("posMode", frozenset({"one_way_mode"}), frozenset({"hedge_mode"})),  # Bitget
    ("holdMode", frozenset({"one_way_mode"}), frozenset({"hedge_mode"})),  # Bitget (older)
)
_LEG_FIELDS: tuple[tuple[str, dict[str, str]], ...] = (
    ("positionSide", {"LONG": "long", "SHORT": "short"}),
    ("posSide", {"long": "long", "short": "short"}),
    ("holdSide", {"long": "long", "short": "short"}),
    ("mode", {"dual_long": "long", "dual_short": "short"}),
    ("positionIdx", {"1": "long", "2": "short"}),
    ("position_side", {"long": "long", "short": "short"}),
)


_BINANCE = ("binance", "binanceusdm", "binancecoinm")
#: Venues whose ccxt ``fetch_positions`` parses each entry of the venue's list on its own
#: (``parse_position`` of each, then a filter by symbol; ccxt 4.5.90): a list ccxt failed to
#: parse can be read entry by entry (``CcxtClient._parse_each``). Binance's ``positionRisk``
#: answer (a list) is parsed so too, by ``parse_position_risk``, leaving out the entries whose
#: ``entryPrice`` is not above 0 as ccxt does; its ``account`` answer and KuCoin's are not.
_PARSED_ONE_BY_ONE = frozenset(
    (
        "okx",
        "bybit",
        "bitget",
        "gate",
        "gateio",
        "mexc",
        "htx",
        "huobi",
        "bingx",
        "hyperliquid",
        *_BINANCE,
    )
)


def _above_zero(value: Any) -> bool:
    """Whether ``value`` (a field of a venue's entry) reads as a number above 0, as ccxt's
    ``Precise.string_gt(value, '0')`` does; raises ``ValueError`` where that does."""
    if value is None:
        return False
    return Decimal(str(value)) > 0


def _parse_failure(error: BaseException) -> bool:
    """Whether ``error`` is a parser's failure on a value (ccxt's ``Precise`` raising
    ``ValueError`` on ``'abc'``, an overflow, a ``TypeError``), not one of ccxt's own errors
    (network, exchange: those subclass ``ccxt.BaseError``)."""
    if type(error).__module__.startswith("ccxt"):
        return False
    return isinstance(error, (ValueError, TypeError, ArithmeticError))


def _margin_of(entry: Mapping[str, Any]) -> str | None:
    """The margin mode ccxt parsed from a position entry ('cross'/'isolated'), else ``None``."""
    mode = entry.get("marginMode")
    return mode if mode in ("cross", "isolated") else None


def _info(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    info = entry.get("info")
    return info if isinstance(info, Mapping) else {}


def _ended_unfilled(order: Mapping[str, Any]) -> bool:
    """Whether a ccxt order says it ended with nothing filled: a final status other than
    ``closed`` (``canceled``, ``expired``, ``rejected``) and ``filled`` a number that is 0. A
    ``closed`` order with nothing filled contradicts itself and says nothing here."""
    status = order.get("status")
    filled = _number(order.get("filled"))
    return (
        isinstance(status, str) and status in _ENDED_STATUSES and status != "closed" and filled == 0
    )


def order_client_id(venue: str, order: Mapping[str, Any]) -> str | None:
    """The client order id a ccxt order names: its ``clientOrderId``, or, on MEXC futures
    (whose ccxt parser leaves it out), the venue's own ``externalOid``; ``None`` when it names
    none."""
    found = order.get("clientOrderId")
    if found is None and venue == "mexc":
        found = _info(order).get("externalOid")
    return None if found is None else str(found)


def other_order(
    order: Mapping[str, Any],
    symbol: str,
    order_id: Any = None,
    client_ids: Iterable[str] = (),
) -> str | None:
    """What says a ccxt order answered for the order ``order_id`` (when given) on ``symbol``
    is another order, else ``None``: another ``symbol`` (a symbol it does not name is not
    held against it), another ``id`` or none, a ``clientOrderId`` that is none of
    ``client_ids`` (when given; pass the id as the venue holds it and as the caller named it).
    A venue's look-up answering another order's data is no answer about this one."""
    found = order.get("symbol")
    if found is not None and found != symbol:
        return f"symbol {found}"
    if order_id is not None and str(order.get("id")) != str(order_id):
        return f"order id {order.get('id')!r}"
    wanted = set(client_ids)
    named = order.get("clientOrderId")
    if wanted and named is not None and str(named) not in wanted:
        return f"client order id {named}"
    return None


#: Venues whose ccxt ``hedged`` is read from one field without checking it (Bybit: any
#: ``positionIdx`` but '0' is hedge mode): their own field alone says.
_VENUE_HEDGE_FIELD: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "bybit": ("positionIdx", ("0",), ("1", "2")),
    "binance": ("positionSide", ("BOTH",), ("LONG", "SHORT")),
    "binanceusdm": ("positionSide", ("BOTH",), ("LONG", "SHORT")),
    "binancecoinm": ("positionSide", ("BOTH",), ("LONG", "SHORT")),
}


def entry_hedged(entry: Mapping[str, Any], venue: str | None = None) -> bool | None:
    """Whether a ccxt position entry says its symbol is held in hedge mode; ``None``: it does not.

    ccxt's ``hedged`` when it is a bool, else the venue's own field in ``info`` (Binance/BingX/
    KuCoin ``positionSide``, OKX ``posSide``, Bybit ``positionIdx``, Gate ``mode``, HTX
    ``position_mode``, Bitget ``posMode``).
    """
    info = _info(entry)
    hedged = entry.get("hedged")
    if isinstance(hedged, bool) and not (venue in _VENUE_HEDGE_FIELD and info):
        return hedged
    if venue in _VENUE_HEDGE_FIELD and info:
        field, says_one_way, says_hedge = _VENUE_HEDGE_FIELD[venue]
        text = answers.field_text(info.get(field))
        return True if text in says_hedge else False if text in says_one_way else None
    for key, one_way, hedge in _HEDGE_FIELDS:
        value = info.get(key)
        if value is None or isinstance(value, bool):
            continue
        text = str(value)
        if text in hedge:
            return True
        if text in one_way:
            return False
    return None


def entry_side(entry: Mapping[str, Any], venue: str | None = None) -> str | None:
    """The leg of a ccxt position entry, 'long' or 'short'; ``None`` when it cannot be read.

    On HTX and MEXC (``venue``; see ``_position_answers.VENUE_LEGS``), whose ccxt parsers give
    ``'short'`` when the venue's entry names no leg, the leg is read from the venue's own
    fields (HTX ``position_side``, then ``direction``; MEXC ``positionType``) and ccxt's
    ``side`` is not used. On Binance, Bybit, OKX and Gate (``_position_answers.CHECKED_LEGS``),
    whose parsers take the side from a field other than the size's sign (Binance the sign of
    ``notional``, Bybit ``positionIdx``), it is read from the venue's fields and ``None`` when
    they name no leg or disagree (Binance ``positionSide``/``positionAmt``/``notional``, Bybit
    ``positionIdx``/``side``, OKX ``posSide``/``pos``, Gate ``size``/``side``/``mode``).
    """
    info = _info(entry)
    if venue in answers.VENUE_LEGS and info:
        return answers.venue_leg(venue, info)
    if venue in answers.CHECKED_LEGS and info:
        return answers.checked_leg(venue, info)
    side = entry.get("side")
    if side in ("long", "short"):
        return str(side)
    for key, legs in _LEG_FIELDS:
        value = info.get(key)
        if value is not None and str(value) in legs:
            return legs[str(value)]
    return None


def _tickers_group(market: Mapping[str, Any]) -> tuple[Any, ...]:
    """The markets one ``fetch_tickers`` request may hold together with ``market``: the same
    type, linear/inverse sub-type and settle currency (Hyperliquid's HIP-3 markets apart)."""
    return (
        market.get("type"),
        market.get("linear"),
        market.get("inverse"),
        market.get("settle"),
        bool(_info(market).get("hip3")),
    )


#: The ccxt methods this client calls whose venue implementation reads ccxt's ``paginate``
#: option (``exchange.options['paginate']``, or ``options[<method>]['paginate']``), by venue
#: (read in ccxt 4.5.90's classes and the classes they derive from: ``kucoinfutures`` reads
#: ``kucoin``'s candles). With the option on, ccxt 4.5.90's paging calls the same method again,
#: which reads the option again: the call recurses, each level retrying, and never returns (a
#: cycle held for ever). The client reads one page per call (it pages Bybit's list itself) and
#: the manager asks ``limit`` candles, so these calls carry ``paginate: False``, which ccxt
#: takes before its options and removes from the request. Other venues' methods do not read the
#: option, and get no such parameter (it would go to the venue as an unknown one).
NO_PAGING: dict[str, frozenset[str]] = {
    "fetch_positions": frozenset({"bybit", "bitget"}),
    "fetch_ohlcv": frozenset(
        {
            "binance",
            "binanceusdm",
            "binancecoinm",
            "bybit",
            "okx",
            "bitget",
            "gate",
            "gateio",
            "kucoin",
            "kucoinfutures",
            "mexc",
            "htx",
            "huobi",
            "bingx",
        }
    ),
}


#: The field of a venue's own ticker (ccxt's ``info``) that names its market by the venue's id.
#: ccxt's ``fetch_ticker`` parses the first ticker of the venue's answer, whichever market it
#: names: one it knows becomes that market's ticker (another ``symbol``), one it does not know
#: becomes a ticker of the market asked about (its ``symbol``), so only this field tells.
_TICKER_ID_FIELDS: dict[str, str] = {
    "binance": "symbol",
    "binanceusdm": "symbol",
    "binancecoinm": "symbol",
    "bybit": "symbol",
    "okx": "instId",
    "bitget": "symbol",
    "gate": "contract",
    "gateio": "contract",
    "kucoinfutures": "symbol",
    "kucoin": "symbol",
    "mexc": "symbol",
    "bingx": "symbol",
}


def _channel_market(heard: Iterable[answers.Heard]) -> str | None:
    """The market id an HTX ticker answer names in its channel (``"ch":
    "market.BTC-USDT.detail.merged"``; its ``tick`` names none), else ``None``."""
    for one in heard:
        answer = one.answer
        channel = answer.get("ch") if isinstance(answer, Mapping) else None
        if isinstance(channel, str) and channel.startswith("market."):
            return channel.split(".")[1]
    return None


def _misaligned_contexts(heard: Iterable[answers.Heard]) -> str | None:
    """Why a Hyperliquid ``metaAndAssetCtxs`` answer among ``heard`` cannot price its markets,
    else ``None``. The answer is two lists, the markets (``universe``) and their prices
    (contexts), matched by their place only: ccxt pairs them by index, so a context missing
    or extra puts a market's price on its neighbour."""
    for one in heard:
        answer = one.answer
        if not (isinstance(answer, list) and len(answer) == 2 and isinstance(answer[0], Mapping)):
            continue
        universe, contexts = answer[0].get("universe"), answer[1]
        if isinstance(universe, list) and (
            not isinstance(contexts, list) or len(contexts) != len(universe)
        ):
            held = len(contexts) if isinstance(contexts, list) else type(contexts).__name__
            return (
                f"hyperliquid's metaAndAssetCtxs answer lists {len(universe)} markets and "
                f"{held} price contexts, which are matched to them by their place only"
            )
    return None


def ticker_names_other(
    venue: str, market: Mapping[str, Any], ticker: Mapping[str, Any], heard: Iterable[Any] = ()
) -> str | None:
    """The market a ccxt ``ticker`` read for ``market`` says it is for when that is another
    one, else ``None`` (the same market, or the ticker does not say): its unified ``symbol``,
    the venue's market id in its ``info`` (``_TICKER_ID_FIELDS``), or, on HTX, the channel of
    the answer (``heard``: the requests ``fetch_ticker`` made, ``_position_answers.Heard``)."""
    named = ticker.get("symbol")
    expected = market.get("symbol")
    if isinstance(named, str) and isinstance(expected, str) and named != expected:
        return named
    market_id = market.get("id")
    if not isinstance(market_id, str):
        return None
    field = _TICKER_ID_FIELDS.get(venue)
    said = _info(ticker).get(field) if field is not None else None
    if venue in ("htx", "huobi"):
        said = _channel_market(heard)
        if isinstance(said, str) and said.lower() == market_id.lower():
            return None
    if isinstance(said, str) and said != market_id:
        return f"{venue} id {said!r}"
    return None


#: Seconds in one unit of a ccxt timeframe (``'1h'``) of a fixed length: months and years are not.
_TIMEFRAME_UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def _timeframe_ms(timeframe: Any) -> int | None:
    """The length of a ccxt timeframe in milliseconds, ``None`` when it has no fixed one."""
    if not isinstance(timeframe, str) or len(timeframe) < 2:
        return None
    count, unit = timeframe[:-1], timeframe[-1]
    if not count.isdigit() or unit not in _TIMEFRAME_UNITS or int(count) == 0:
        return None
    return int(count) * _TIMEFRAME_UNITS[unit] * 1_000


def candle_problem(rows: list[Any], timeframe: str) -> str | None:
    """Why candles ccxt answered for ``timeframe`` are not that timeframe's, else ``None``: two
    rows of one time (ccxt keeps both), rows out of time order, or two rows whose distance is
    not a whole number of ``timeframe`` (candles of another timeframe; a gap of whole candles,
    hours without trades, is fine). Rows without a numeric time are left to the manager's own
    checks."""
    step = _timeframe_ms(timeframe)
    previous: float | None = None
    for row in rows:
        time = row[0] if isinstance(row, (list, tuple)) and row else None
        if isinstance(time, bool) or not isinstance(time, (int, float)) or not math.isfinite(time):
            return None
        if previous is not None:
            if time == previous:
                return f"the candle of {time!r} is in it twice"
            if time < previous:
                return f"its candles are out of time order ({time!r} after {previous!r})"
            if step is not None and (time - previous) % step != 0:
                return (
                    f"its candles are not one per {timeframe}: two of them are "
                    f"{(time - previous) / 1000:g} s apart"
                )
        previous = time
    return None


#: A venue's position lists (see ``list_scope``): what ccxt's ``fetch_positions()`` reads when
#: given nothing. Venues missing here answer every market in that one list (Binance USD-M, OKX,
#: KuCoin, MEXC).
_DEFAULT_SCOPES: dict[str, tuple[Any, ...]] = {
    "bybit": ("linear", "USDT"),
    "bitget": ("USDT-FUTURES", "USDT"),
    "gate": ("swap", "usdt"),
    "gateio": ("swap", "usdt"),
    "htx": ("linear",),
    "huobi": ("linear",),
    "bingx": ("linear",),
    "hyperliquid": ("dex", None),
}
#: Bitget's product type of a settle currency (its demo-trading currencies apart, every other
#: currency is coin-margined).
_BITGET_PRODUCTS = {
    "USDT": "USDT-FUTURES",
    "USDC": "USDC-FUTURES",
    "SUSDT": "SUSDT-FUTURES",
    "SUSDC": "SUSDC-FUTURES",
    "SBTC": "SCOIN-FUTURES",
    "SETH": "SCOIN-FUTURES",
    "SEOS": "SCOIN-FUTURES",
}
#: Entries in a full page of Bybit's position list (what ccxt asks for; Bybit's maximum).
BYBIT_POSITIONS_PAGE = 200
#: Pages of one Bybit position list read at most before the list is called unreadable.
_BYBIT_MAX_PAGES = 50


def list_scope(
    venue: str, market: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """The position list of ``venue`` that holds the positions of ``market`` (a ccxt market):
    ``(key, params)``, where ``params`` make ccxt's ``fetch_positions(None, params)`` read that
    list; ``None`` when one list holds every market of the venue, or ``market`` is no contract.

    ccxt reads one list when asked for every position, and on some venues that list holds one
    kind of market only: Bybit linear USDT (USDC-settled and inverse markets are other lists),
    Bitget USDT-FUTURES (USDC-FUTURES, COIN-FUTURES per margin coin), Gate USDT-settled
    perpetuals (BTC-settled ones and delivery futures), HTX and BingX linear (inverse), and
    Hyperliquid's main dex (each HIP-3 dex). ``_DEFAULT_SCOPES`` names the list ccxt reads
    by default.
    """
    if venue not in _DEFAULT_SCOPES or not market.get("contract", True):
        return None
    settle = market.get("settle")
    settle_id = market.get("settleId") or settle
    if venue == "bybit":
        if market.get("inverse"):
            return ("inverse",), {"subType": "inverse"}
        return ("linear", settle_id), {"subType": "linear", "settleCoin": settle_id}
    if venue == "bitget":
        product = _BITGET_PRODUCTS.get(str(settle), "COIN-FUTURES")
        params: dict[str, Any] = {"productType": product}
        if product.endswith("COIN-FUTURES"):
            params["marginCoin"] = settle_id
        return (product, settle_id), params
    if venue in ("gate", "gateio"):
        kind = "future" if market.get("type") == "future" else "swap"
        code = str(settle_id).lower()
        return (kind, code), {"type": kind, "settle": code}
    if venue in ("htx", "huobi", "bingx"):
        if not market.get("inverse"):
            return ("linear",), {"subType": "linear"}
        if venue == "bingx":
            return ("inverse",), {"subType": "inverse"}
        kind = "future" if market.get("type") == "future" else "swap"
        return ("inverse", kind), {"subType": "inverse", "type": kind}
    # hyperliquid: a HIP-3 dex's markets are named "<dex>:<coin>"
    base = market.get("baseName")
    dex = base.split(":", 1)[0] if isinstance(base, str) and ":" in base else None
    return ("dex", dex), ({"dex": dex} if dex is not None else {})


def _scope_name(key: tuple[Any, ...]) -> str:
    """A position list's key in words (``('linear', 'USDC')`` -> ``'linear USDC'``)."""
    return " ".join(str(part) for part in key if part is not None)


def _leg_of(side: str, reduce_only: bool, position_side: str | None) -> str:
    """The leg an order acts on: ``position_side`` when given (checked against ``side``), else
    the one ``side`` opens or reduces ('buy' opens long and reduces short)."""
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    implied = "long" if (side == "buy") != bool(reduce_only) else "short"
    if position_side is None:
        return implied
    if position_side not in ("long", "short"):
        raise ValueError(f"position_side must be None, 'long' or 'short', got {position_side!r}")
    if position_side != implied:
        kind = "reduce-only " if reduce_only else ""
        verb = "reduces" if reduce_only else "opens"
        raise ValueError(
            f"a {kind}{side} order {verb} the {implied} leg, not position_side={position_side!r}"
        )
    return position_side


class CcxtClient:
    """The exchange client protocol of ``PositionManager`` on top of a ccxt exchange object.

    ``exchange`` is a synchronous ccxt exchange (``ccxt.binanceusdm(...)``,
    ``ccxt.kucoinfutures(...)``, ...) or any object with the same unified methods; an asyncio one
    (``ccxt.async_support``) raises ``TypeError`` (use ``position_manager_rs.aio.AsyncCcxtClient``).
    ``sleep`` is what ``wait_for_order_fill`` pauses with and ``clock`` (monotonic seconds) what
    it measures its timeout with; both are injectable for tests. Messages go to ``logger``
    (default: the bot's ``TradingBot`` logger).

    Client order ids (see the module docstring): ``not_found_grace`` (seconds, by ``clock``) is
    how long after this instance sent an id a "not found" lookup is still "cannot tell";
    ``remembered_ids`` bounds how many sent ids are kept for that and for refusing a reuse.

    Position legs: ``position_mode`` is ``'auto'`` (read hedge or one-way mode from the venue's
    position entries, else ask the venue once where it can tell — ``fetch_position_mode``,
    Bybit's list of one symbol, HTX's ``v5/position/mode``, Gate's refusal of a single-mode
    leverage change — else one-way), ``'hedge'`` or ``'oneway'`` (the account's mode, as set on
    the venue: no guessing). ``margin_mode`` (``'cross'``/``'isolated'``, default: the
    venue's) is passed to leverage changes and to orders where the venue takes it (OKX, Bitget,
    MEXC and HTX orders carry it: set it on an isolated account there, ccxt's default is
    cross); an order on a position the latest list showed in the other mode (opened by hand)
    names that position's mode instead, so it acts on it. KuCoin orders always name the
    symbol's mode (KuCoin refuses any other): as the venue last told it (a position entry,
    ``fetch_margin_mode``, a refusal of the other mode), else ``margin_mode``, else the venue's
    answer (``fetch_margin_mode``, once per symbol). ``market_slippage`` bounds market orders
    on venues that need a price for them (Hyperliquid; default: ccxt's 5 %).
    ``markets_reload_seconds``: at most one reload of the markets per this many seconds when a
    position entry names a market ccxt does not know.

    Position lists (``list_scope``): where a venue lists some kinds of market apart (Bybit's
    USDC-settled and inverse markets, Bitget's USDC- and coin-margined ones, Gate's BTC-settled
    ones, HTX's and BingX's coin-margined ones, Hyperliquid's HIP-3 dexes), every read covers
    the kinds of market the client was given a symbol of; the manager names the symbols it
    holds through ``watch_symbols``. ``every_position_list=True`` reads, at every read, the
    list of every kind of market the loaded markets hold (one request each: a sync then
    imports positions opened by hand anywhere, at that cost per read).
    """

    #: Capability flag read by the manager: the order methods accept ``client_order_id=...`` and
    #: ``get_order_by_client_id`` exists.
    client_order_ids = True
    #: Capability flag read by the manager: ``close_position(symbol, side=...)`` closes one leg
    #: and ``create_market_order(..., reduce_only=True, position_side=...)`` reduces one leg.
    position_legs = True
    #: Capability flag read by the manager: ``close_position(..., contracts=N)`` takes the
    #: manager's size of the position, and never sends more than that when the fresh position
    #: list shows more (a list that lags a reduction the manager saw fill).
    sized_closes = True

    def __init__(
        self,
        exchange: Any,
        *,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
        not_found_grace: float = 10.0,
        remembered_ids: int = 100_000,
        position_mode: str = "auto",
        margin_mode: str | None = None,
        market_slippage: float | None = None,
        markets_reload_seconds: float = 60.0,
        every_position_list: bool = False,
    ) -> None:
        if is_async_exchange(exchange):
            raise TypeError(
                f"CcxtClient needs a synchronous ccxt exchange, got the asyncio "
                f"{type(exchange).__module__}.{type(exchange).__name__} (its calls answer "
                "coroutines): wrap it in position_manager_rs.aio.AsyncCcxtClient instead"
            )
        if not (isinstance(not_found_grace, (int, float)) and not_found_grace >= 0):
            raise ValueError(f"not_found_grace must be a number >= 0, got {not_found_grace!r}")
        if not (isinstance(remembered_ids, int) and remembered_ids > 0):
            raise ValueError(f"remembered_ids must be an int > 0, got {remembered_ids!r}")
        if position_mode not in ("auto", "hedge", "oneway"):
            raise ValueError(
                f"position_mode must be 'auto', 'hedge' or 'oneway', got {position_mode!r}"
            )
        if margin_mode not in (None, "cross", "isolated"):
            raise ValueError(
                f"margin_mode must be None, 'cross' or 'isolated', got {margin_mode!r}"
            )
        if market_slippage is not None and not (
            isinstance(market_slippage, (int, float)) and 0 < market_slippage < 1
        ):
            raise ValueError(
                f"market_slippage must be None or a fraction in (0, 1), got {market_slippage!r}"
            )
        if not isinstance(every_position_list, bool):
            raise TypeError(f"every_position_list must be a bool, got {every_position_list!r}")
        if not (isinstance(markets_reload_seconds, (int, float)) and markets_reload_seconds >= 0):
            raise ValueError(
                f"markets_reload_seconds must be a number >= 0, got {markets_reload_seconds!r}"
            )
        self.exchange = exchange
        self.sleep = sleep
        self.clock = clock
        self.logger = logger if logger is not None else logging.getLogger("TradingBot")
        self.not_found_grace = float(not_found_grace)
        self.remembered_ids = remembered_ids
        self.position_mode = position_mode
        self.margin_mode = margin_mode
        self.market_slippage = market_slippage
        self.markets_reload_seconds = float(markets_reload_seconds)
        self.every_position_list = every_position_list
        # client order id -> when it was sent, by ``clock`` and by the wall clock (what a venue's
        # order times are compared with)
        self._sent_ids: OrderedDict[str, tuple[float, float]] = OrderedDict()
        # Client order ids of orders the exchange refused (nothing placed): a lookup of one
        # answers None at once, where the venue might say "not found" only after the grace.
        self._refused_ids: OrderedDict[str, None] = OrderedDict()
        self._ids_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._markets_lock = threading.Lock()
        self._symbol_hedged: dict[str, bool] = {}  # from the venue's entries, per symbol
        self._account_hedged: bool | None = None  # from the latest entry that said
        self._venue_mode: bool | None = None  # from fetch_position_mode
        self._cross: dict[str, bool] = {}  # symbol -> its entry says cross margin
        # (symbol, leg) -> the margin mode of the position the latest list read showed there
        # (``_LEVERAGE_MARGIN_VENUES``), and the mode each order was sent in, by client order id
        # and by order id (HTX: its look-ups name it).
        self._listed_margin: dict[tuple[str, str], str] = {}
        # Whether a read of every list, or of which symbols' own, noted ``_listed_margin``.
        self._margins_all_read = False
        self._margin_symbols_read: set[str] = set()
        self._order_margins: OrderedDict[str, str] = OrderedDict()
        self._warned_unknown: set[str] = set()
        self._told_endpoint = False
        self._mode_warned = False
        self._markets_reloaded_at: float | None = None
        # Position lists read besides the venue's default one (``list_scope``): key -> params,
        # in the order first needed; symbols whose list is known; symbols told of before ccxt
        # had their market (placed when it has).
        self._scopes: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._scoped: set[str] = set()
        self._unscoped: set[str] = set()
        self._markets_seen: Any = None  # the markets ``every_position_list`` last looked at
        # The decoded answers of fetch_positions' own requests are looked at (``_fetch_page``):
        # ccxt's ``fetch`` is wrapped once to note them for the calling thread only.
        answers.record_answers(self._http_exchange())

    def _http_exchange(self) -> Any:
        """The ccxt object whose ``fetch`` makes the HTTP requests of ``self.exchange``."""
        return self.exchange

    def __repr__(self) -> str:
        name = getattr(self.exchange, "id", None) or type(self.exchange).__name__
        return f"CcxtClient({name})"

    # ------------------------------------------------------------------ helpers

    @property
    def venue(self) -> str:
        """The exchange's ccxt id (``exchange.id``), ``''`` when it has none."""
        venue = getattr(self.exchange, "id", None)
        return venue if isinstance(venue, str) else ""

    def _has(self, capability: str) -> bool:
        """Whether the exchange declares ``capability`` (ccxt's ``has`` map, camelCase key)."""
        has = getattr(self.exchange, "has", None)
        if not isinstance(has, Mapping):
            return False
        return bool(has.get(capability))

    def is_hedged(self, symbol: str) -> bool:
        """Whether orders on ``symbol`` must name their leg (the account is in hedge mode there).

        ``position_mode`` when not ``'auto'``; else what the venue's entries said (the symbol's
        own, else the account's latest), else the venue's answer to ``fetch_position_mode``
        (asked once), else one-way.
        """
        if self.position_mode != "auto":
            return self.position_mode == "hedge"
        if self.venue in _ONE_WAY_VENUES:
            return False
        with self._state_lock:
            known = self._symbol_hedged.get(symbol)
            if known is None:
                known = self._account_hedged
            if known is None:
                known = self._venue_mode
        if known is not None:
            return known
        return self._ask_venue_mode(symbol)

    def _ask_venue_mode(self, symbol: str | None) -> bool:
        """The venue's own answer to "hedge mode?" (``fetch_position_mode``), cached; else False.

        Bybit has no such call, but its position list for one symbol holds an entry per leg
        even when nothing is open (``positionIdx`` 0, or 1 and 2 in hedge mode): read from it.
        """
        if self.venue in _MODE_FROM_SYMBOL_LIST and symbol is not None:
            return self._mode_from_symbol_list(symbol)
        if self.venue in ("htx", "huobi"):
            return self._htx_position_mode()
        undeclared = self.venue in _UNDECLARED_POSITION_MODE_VENUES and callable(
            getattr(self.exchange, "fetch_position_mode", None)
        )
        if not (self._has("fetchPositionMode") or undeclared):
            return False
        try:
            if callable(getattr(self.exchange, "load_markets", None)):
                self.exchange.load_markets()  # some classes (Binance) need them and do not load
            answer = self.exchange.fetch_position_mode(symbol)
        except Exception as e:
            self._mode_unreadable(e, f" for {symbol}")
            return False
        hedged = answer.get("hedged") if isinstance(answer, Mapping) else None
        if not isinstance(hedged, bool):
            return False
        with self._state_lock:
            self._venue_mode = hedged
        return hedged

    def _mode_unreadable(self, e: Exception, what: str) -> None:
        """Warns, once per client, that the account's position mode could not be read."""
        with self._state_lock:
            first = not self._mode_warned
            self._mode_warned = True
        if first:
            self.logger.warning(
                f"Could not read the position mode{what}: {type(e).__name__}: {_said(e)}; "
                "assuming one-way (set CcxtClient(position_mode=...) to say)"
            )

    def _htx_position_mode(self) -> bool:
        """HTX (v5): the account's ``position_mode`` (``dual_side``: hedge mode), asked once."""
        try:
            response = self.exchange.contractPrivateGetV5PositionMode()
        except Exception as e:
            self._mode_unreadable(e, "")
            return False
        data = response.get("data") if isinstance(response, Mapping) else None
        mode = data.get("position_mode") if isinstance(data, Mapping) else None
        if mode not in ("dual_side", "single_side"):
            return False
        hedged = mode == "dual_side"
        with self._state_lock:
            self._venue_mode = hedged
        return hedged

    def _mode_from_symbol_list(self, symbol: str) -> bool:
        """Hedge mode of ``symbol`` from the venue's list of its entries (placeholders included)."""
        try:
            paging = self._unpaged("fetch_positions", {})
            entries = (
                self.exchange.fetch_positions([symbol], paging)
                if paging
                else self.exchange.fetch_positions([symbol])
            )
        except Exception as e:
            self._mode_unreadable(e, f" for {symbol}")
            return False
        modes = {
            entry_hedged(e, self.venue)
            for e in entries or ()
            if isinstance(e, Mapping) and e.get("symbol") == symbol
        } - {None}
        if len(modes) != 1:
            return False
        hedged = bool(modes.pop())
        with self._state_lock:
            self._symbol_hedged.setdefault(symbol, hedged)
        return hedged

    def _leverage_params(
        self, symbol: str, leverage: Any, leg: str, margin: str | None
    ) -> list[dict[str, Any]]:
        """The ``set_leverage`` params per call the venue needs (one call per dict)."""
        venue = self.venue
        if venue == "bingx":
            return [{"side": leg.upper() if self.is_hedged(symbol) else "BOTH"}]
        # ``margin``: the mode of the position the order opens or adds to (``_order_setup``).
        if venue == "mexc":
            open_type = 1 if margin == "isolated" else 2
            return [{"openType": open_type, "positionType": 1 if leg == "long" else 2}]
        if venue == "okx" and margin == "isolated":
            # OKX keeps an isolated leverage per leg: posSide long/short, or net (one-way).
            return [{"marginMode": "isolated", "posSide": leg if self.is_hedged(symbol) else "net"}]
        if venue == "bitget" and margin == "isolated" and self.is_hedged(symbol):
            return [{"holdSide": leg}]  # Bitget: an isolated hedge-mode leg's own leverage
        if venue in _SYMBOL_MARGIN_VENUES and margin == "isolated":
            return []  # ccxt sets cross leverage only; an isolated order carries its leverage
        if margin is not None and venue in ("okx", "hyperliquid", "kucoinfutures", "htx", "huobi"):
            return [{"marginMode": margin}]
        return [{}]

    def _symbol_margin_mode(self, symbol: str) -> str | None:
        """The margin mode an order on ``symbol`` names where the venue refuses an order in
        another mode than the symbol's (``_SYMBOL_MARGIN_VENUES``): the symbol's mode as the
        venue last told it (a position entry, an answer of ``fetch_margin_mode``, or a refusal
        of the other mode); else ``margin_mode`` when set; else the venue's answer to
        ``fetch_margin_mode`` (asked once per symbol); ``None`` (the order names none: the
        venue's default, ``_SYMBOL_MARGIN_DEFAULT``) when it cannot be read. The venue's word
        comes first: it refuses an order in any other mode, closes included."""
        with self._state_lock:
            cross = self._cross.get(symbol)
        if cross is None and self.margin_mode is not None:
            return self.margin_mode
        if cross is None and self._has("fetchMarginMode"):
            try:
                answer = self.exchange.fetch_margin_mode(symbol)
            except Exception as e:
                self.logger.warning(
                    f"Could not read the margin mode of {symbol} ({type(e).__name__}: {_said(e)}); "
                    "the order names none (the venue's default)"
                )
                return None
            mode = answer.get("marginMode") if isinstance(answer, Mapping) else None
            if mode not in ("cross", "isolated"):
                self.logger.warning(
                    f"The margin mode of {symbol} reads {answers.quoted(answer)}; the order "
                    "names none (the venue's default)"
                )
                return None
            cross = mode == "cross"
            with self._state_lock:
                self._cross.setdefault(symbol, cross)
        if cross is None:
            return None
        return "cross" if cross else "isolated"

    def _set_leverage(self, symbol: str, leverage: Any, leg: str, margin: str | None) -> None:
        """Best-effort leverage change before an opening order: a failure is only logged."""
        if leverage is None or not self._has("setLeverage"):
            return
        if self.venue in ("gate", "gateio"):
            self._gate_set_leverage(symbol, leverage)
            return
        for params in self._leverage_params(symbol, leverage, leg, margin):
            try:
                if params:
                    self.exchange.set_leverage(leverage, symbol, params)
                else:
                    self.exchange.set_leverage(leverage, symbol)
            except Exception as e:
                if _leverage_unchanged(e):
                    continue  # Bybit refuses to set the leverage a symbol already has
                self.logger.warning(f"Could not set leverage {leverage}x for {symbol}: {_said(e)}")

    def _gate_set_leverage(self, symbol: str, leverage: Any) -> None:
        """Gate: a cross position's leverage is its ``cross_leverage_limit`` (a plain leverage
        would switch it to isolated), so its margin mode is read from the position list first;
        a dual-mode account takes leverage on the ``dual_comp`` path only (ccxt's
        ``set_leverage`` uses the single-mode one, which Gate refuses in dual mode: the
        refusal tells the mode)."""
        with self._state_lock:
            known = symbol in self._cross
        if self.margin_mode is None and not known:
            try:
                self._read_entries()  # notes each listed contract's margin and position mode
            except Exception as e:
                self.logger.warning(f"Could not read the margin mode of {symbol}: {_said(e)}")
        with self._state_lock:
            cross = self._cross.get(symbol)
        if self.margin_mode == "cross" or (self.margin_mode is None and cross):
            params: dict[str, Any] = {"cross_leverage_limit": str(leverage)}
        else:
            params = {}  # ccxt's default: an isolated leverage
        dual = self.is_hedged(symbol)
        for _attempt in range(2):
            try:
                if dual:
                    self._gate_dual_leverage(symbol, leverage, params)
                elif params:
                    self.exchange.set_leverage(leverage, symbol, params)
                else:
                    self.exchange.set_leverage(leverage, symbol)
                return
            except Exception as e:
                text = str(e)
                if not dual and "POSITION_DUAL_MODE" in text:
                    with self._state_lock:
                        self._symbol_hedged[symbol] = True
                        self._account_hedged = True
                    dual = True
                    continue
                self.logger.warning(f"Could not set leverage {leverage}x for {symbol}: {_said(e)}")
                return

    def _gate_dual_leverage(self, symbol: str, leverage: Any, params: dict[str, Any]) -> None:
        exchange = self.exchange
        exchange.load_markets()
        market = exchange.market(symbol)
        request = {"settle": market["settleId"], "contract": market["id"]}
        if "cross_leverage_limit" in params:
            request.update(leverage="0", cross_leverage_limit=params["cross_leverage_limit"])
        else:
            request["leverage"] = str(leverage)
        exchange.privateFuturesPostSettleDualCompPositionsContractLeverage(request)

    def _order_setup(
        self,
        symbol: str,
        reduce_only: bool,
        leg: str,
        leverage: Any,
        hedged: bool,
        margin: str | None = None,
    ) -> dict[str, Any]:
        """Before an order: the margin mode it names where orders name one (``margin``, the
        mode of the position it acts on when the caller knows it), the leverage set for an
        opening order; the order's ccxt params."""
        if self.venue in _SYMBOL_MARGIN_VENUES:
            margin = margin or self._symbol_margin_mode(symbol)
        elif self.venue in _LEVERAGE_MARGIN_VENUES:
            if margin is None:
                beside = not hedged or self.venue in _SYMBOL_MODE_VENUES
                if (reduce_only or beside) and not self._margins_read(symbol):
                    # No list this client read covered the symbol (a process just started):
                    # the mode of a held position is read before an order names one.
                    self._probe_margins(symbol)
                margin = self._listed_margin_of(symbol, leg, beside)
            if margin is None:
                margin = self.margin_mode
        else:
            margin = None
        if not reduce_only:
            self._set_leverage(symbol, leverage, leg, margin)
        return self._order_params(symbol, reduce_only, leg, leverage, hedged, margin)

    def _listed_margin_of(self, symbol: str, leg: str, beside: bool) -> str | None:
        """The margin mode the latest list showed ``leg`` of ``symbol`` in; ``beside``: else
        the other leg's (one-way: the order acts on whichever side the symbol holds, a reversal
        by hand the manager has not taken in yet lists the other; Bitget in hedge mode: a new
        leg takes the symbol's mode, the held leg's)."""
        with self._state_lock:
            margin = self._listed_margin.get((symbol, leg))
            if margin is None and beside:
                other = "short" if leg == "long" else "long"
                margin = self._listed_margin.get((symbol, other))
            return margin

    def _margins_read(self, symbol: str) -> bool:
        """Whether a position list this client read covered ``symbol`` (every list, or the
        symbol's own), so ``_listed_margin`` holds its positions' modes as of that read."""
        with self._state_lock:
            return self._margins_all_read or symbol in self._margin_symbols_read

    def _probe_margins(self, symbol: str) -> None:
        """Reads ``symbol``'s positions to learn their margin modes (``_note_margins``). A read
        that fails leaves the order to name ``margin_mode``: the venue refuses it if a held
        position is in the other mode, which the manager takes as a failed order."""
        try:
            self._open_positions(symbol)
        except Exception as e:  # any failure: go on without the probe
            self.logger.warning(
                f"Could not read the positions of {symbol} for their margin mode before an "
                f"order; it names margin_mode={self.margin_mode!r}: {_said(e)}"
            )

    def _order_params(
        self,
        symbol: str,
        reduce_only: bool,
        leg: str,
        leverage: Any,
        hedged: bool,
        margin: str | None,
    ) -> dict[str, Any]:
        """The ccxt params of an order: reduce-only, the leg in hedge mode, venue extras;
        ``margin``: the symbol's margin mode where orders must name it (``_order_setup``)."""
        params: dict[str, Any] = {"reduceOnly": True} if reduce_only else {}
        venue = self.venue
        if venue in ("htx", "huobi") and self._is_inverse(symbol):
            # HTX's coin-margined contracts (v1 API): every order names whether it opens or
            # closes, and carries the leverage (ccxt sends 1 without it); no margin mode.
            params["offset"] = "close" if reduce_only else "open"
            if _number(leverage):
                params["lever_rate"] = int(float(leverage))
            return params
        if hedged:
            if venue == "mexc":
                params["side"] = _MEXC_SIDES[(reduce_only, leg)]
                params["positionMode"] = 1
            elif venue in ("gate", "gateio"):
                pass  # dual mode: a reduce-only order's sign names the leg it reduces
            elif venue in ("htx", "huobi"):
                # ccxt sends linear swaps to HTX's v5 API, which names the leg in position_side
                # (ccxt's hedged only sets the v1 offset of inverse contracts).
                params["position_side"] = leg
            else:
                params["hedged"] = True
        if venue in ("kucoinfutures", "kucoin") and leverage is not None:
            # The order body's leverage is what an isolated position gets (ccxt sends 1).
            params["leverage"] = leverage
        if margin is not None and venue in _NAMED_MARGIN_VENUES:
            # Every order names the margin mode of the position it acts on (OKX tdMode, MEXC
            # openType, KuCoin the symbol's), closes included.
            params["marginMode"] = margin
        if venue == "mexc" and margin == "isolated" and _number(leverage):
            params["leverage"] = leverage  # MEXC: an isolated order carries its leverage
        return params

    def _is_inverse(self, symbol: str) -> bool:
        """Whether ``symbol`` is a coin-margined (inverse) market, as ccxt's markets say."""
        markets = getattr(self.exchange, "markets", None)
        market = markets.get(symbol) if isinstance(markets, Mapping) else None
        return isinstance(market, Mapping) and bool(market.get("inverse"))

    def _market_price(self, symbol: str, side: str) -> float | None:
        """The price a market order carries on venues that need one (the ticker's; one that
        is another market's raises, ``_fetch_ticker``)."""
        ticker = self._fetch_ticker(symbol)
        if not isinstance(ticker, Mapping):
            return None
        for key in ("ask" if side == "buy" else "bid", "last", "close"):
            price = _number(ticker.get(key))
            if price is not None and math.isfinite(price) and price > 0:
                return price
        return None

    def _claim(self, client_order_id: str | None) -> None:
        """Notes that ``client_order_id`` is being sent; raises if this instance sent it before."""
        if client_order_id is None:
            return
        if not isinstance(client_order_id, str) or not client_order_id:
            raise TypeError(f"client_order_id must be a non-empty str, got {client_order_id!r}")
        with self._ids_lock:
            if client_order_id in self._sent_ids:
                raise DuplicateClientOrderId(client_order_id)
            self._sent_ids[client_order_id] = (self.clock(), time.time())
            while len(self._sent_ids) > self.remembered_ids:
                self._sent_ids.popitem(last=False)

    def _place(
        self,
        symbol: str,
        order_type: str,
        side: str,
        amount: float,
        price: float | None,
        params: dict[str, Any],
        client_order_id: str | None = None,
    ) -> dict[str, Any] | None:
        """``create_order`` with the failure semantics of the module docstring."""
        wire = None if client_order_id is None else self.venue_client_order_id(client_order_id)
        if wire is not None:
            params = {**params, "clientOrderId": wire}
        margin = params.get("marginMode") if self.venue in ("htx", "huobi") else None
        if client_order_id is not None and isinstance(margin, str):
            self._remember_margin(client_order_id, margin)
        try:
            order = self.exchange.create_order(
                symbol, order_type, side, amount, price, self._no_retries(params)
            )
        except Exception as e:
            if _venue_unknown_outcome(self.venue, e):
                # The venue's own "outcome unknown" (OKX 51149, KuCoin 408000, ...), whatever
                # class ccxt gave it: the order may exist, so its id is not noted as refused.
                self.logger.error(
                    f"{order_type.capitalize()} order {side} {amount} {symbol}: outcome unknown "
                    f"(the venue's answer says so: {type(e).__name__}: {_said(e)})"
                )
                raise
            if client_order_id is not None and is_duplicate_client_order_id(e, self.venue):
                self.logger.error(
                    f"{order_type.capitalize()} order {side} {amount} {symbol}: client order id "
                    f"{client_order_id} already used on the exchange "
                    f"({type(e).__name__}: {_said(e)})"
                )
                raise DuplicateClientOrderId(client_order_id) from e
            if is_definitive_rejection(e) or _venue_refusal(self.venue, e):
                self.logger.error(
                    f"{order_type.capitalize()} order {side} {amount} {symbol} rejected: "
                    f"{type(e).__name__}: {_said(e)}"
                )
                if self.venue in _SYMBOL_MARGIN_VENUES and _MARGIN_MODE_REFUSAL in str(e):
                    # Refused for its margin mode (the one it named, or the venue's default when
                    # it named none): the symbol's is the other one.
                    named = params.get("marginMode") or _SYMBOL_MARGIN_DEFAULT
                    with self._state_lock:
                        self._cross[symbol] = named != "cross"
                    self.logger.warning(
                        f"{symbol} is in {'isolated' if named == 'cross' else 'cross'} margin on "
                        f"the exchange, not {named}: its next orders name that mode"
                    )
                self._note_refused(client_order_id)
                return None
            self.logger.error(
                f"{order_type.capitalize()} order {side} {amount} {symbol}: outcome unknown "
                f"({type(e).__name__}: {_said(e)})"
            )
            raise
        if not isinstance(order, Mapping):
            # Not a refusal either: whether an order exists is unknown.
            raise TypeError(f"create_order() answered {type(order).__name__}, not an order")
        if order.get("id") is None:
            # ccxt passes some venues' error answers through as an order without an id (HTX
            # codes it does not map): not an accepted order, not a refusal either.
            self.logger.error(
                f"{order_type.capitalize()} order {side} {amount} {symbol}: outcome unknown "
                f"(the answer carries no order id: {answers.quoted(order.get('info'))})"
            )
            raise LookupError(f"create_order() answered no order id for {symbol}: outcome unknown")
        answer = dict(self._unified_order(order))
        if answer.get("clientOrderId") in (None, wire):
            answer["clientOrderId"] = client_order_id
        if isinstance(margin, str):
            self._remember_margin(str(order["id"]), margin)
        return answer

    def _no_retries(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` of an order-placing or cancel call, with ccxt's retries turned off
        (``_NO_RETRIES``): in the params, or, where the venue's class does not pass them to
        the request (``_NO_RETRY_PATHS``), in ccxt's options of the venue's order paths."""
        paths = _NO_RETRY_PATHS.get(self.venue)
        if paths is None:
            return {**params, **_NO_RETRIES}
        options = getattr(self.exchange, "options", None)
        if isinstance(options, dict):
            for path in paths:
                own = options.get(path)
                if own is None or (isinstance(own, dict) and own.get("maxRetriesOnFailure") != 0):
                    options[path] = {**(own or {}), **_NO_RETRIES}
        return params

    def _note_refused(self, client_order_id: str | None) -> None:
        """Notes that the order of ``client_order_id`` was not placed (refused by the venue, or
        never sent): its look-up answers ``None`` at once."""
        if client_order_id is None:
            return
        with self._ids_lock:
            self._refused_ids[client_order_id] = None
            while len(self._refused_ids) > self.remembered_ids:
                self._refused_ids.popitem(last=False)

    def _remember_margin(self, key: str, margin: str) -> None:
        """Notes the margin mode an order (its client order id or id) was sent in."""
        with self._ids_lock:
            self._order_margins[key] = margin
            while len(self._order_margins) > 2 * self.remembered_ids:
                self._order_margins.popitem(last=False)

    def _fetch_order(
        self,
        order_id: Any,
        symbol: str,
        params: dict[str, Any] | None = None,
        margin: str | None = None,
    ) -> Any:
        """``fetch_order`` with the venue's required params (Bybit: ``acknowledged``; HTX: the
        margin mode the order was placed with: ``margin``, else the one noted for ``order_id``
        when this instance sent it, else ``margin_mode``)."""
        params = dict(params or {})
        if self.venue == "bybit":
            # ccxt refuses Bybit order look-ups unless told that only the last 500 orders are
            # visible; the manager looks up orders it has just sent.
            params["acknowledged"] = True
        if self.venue in ("htx", "huobi"):
            # HTX's look-up names a margin mode, which ccxt sets to cross unless told: an
            # isolated order is looked up under the mode it was placed with.
            if margin is None and order_id is not None:
                with self._ids_lock:
                    margin = self._order_margins.get(str(order_id))
            margin = margin or self.margin_mode
            if margin is not None:
                params["marginMode"] = margin
        if params:
            return self._unified_order(self.exchange.fetch_order(order_id, symbol, params))
        return self._unified_order(self.exchange.fetch_order(order_id, symbol))

    def _unified_order(self, order: Any) -> Any:
        """An order as ccxt parsed it, with what ccxt leaves in the venue's terms unified: MEXC
        futures ``side`` codes (1 open long, 2 close short: buy; 3 open short, 4 close long:
        sell) become 'buy'/'sell' and say ``reduceOnly``."""
        if self.venue != "mexc" or not isinstance(order, Mapping):
            return order
        code = str(order.get("side"))
        if code not in ("1", "2", "3", "4"):
            return order
        unified = dict(order)
        unified["side"] = "buy" if code in ("1", "2") else "sell"
        unified["reduceOnly"] = code in ("2", "4")
        return unified

    def venue_client_order_id(self, client_order_id: str) -> str:
        """The form ``client_order_id`` takes on the venue: Gate's ``text`` starts with "t-";
        elsewhere the id as it is."""
        if self.venue in ("gate", "gateio") and not client_order_id.startswith("t-"):
            return "t-" + client_order_id
        if self.venue == "bingx":
            return client_order_id.lower()  # BingX stores client ids in lower case
        digest = hashlib.sha256(client_order_id.encode("utf-8")).hexdigest()
        if self.venue == "hyperliquid":
            # A cloid is a 128-bit hex string: the id's digest, the same for every look-up.
            return "0x" + digest[:32]
        if self.venue in ("htx", "huobi"):
            # HTX takes integers only (ccxt drops any other id without a word, and reads ids
            # through a float): 52 bits of the digest, exact as a float.
            return str(int(digest[:13], 16) + 1)
        return client_order_id

    def _fetch_by_client_id(self, wire: str, symbol: str, client_order_id: str) -> Any:
        """The venue's order with client order id ``wire`` (its own form); ``None`` or ccxt's
        ``OrderNotFound`` when it has none."""
        if self.venue == "bybit":
            return self._bybit_order_by_link_id(wire, symbol)
        if self.venue == "bingx":
            return self._bingx_order_by_client_id(wire, symbol)
        if self.venue == "mexc":
            return self._unified_order(self._mexc_order_by_external_oid(wire, symbol))
        if self.venue in ("htx", "huobi") and not self._is_inverse(symbol):
            return self._htx_order_by_client_id(wire, symbol, client_order_id)
        return self._fetch_order(None, symbol, {"clientOrderId": wire})

    def _htx_order_by_client_id(self, wire: str, symbol: str, client_order_id: str) -> Any:
        """HTX: the look-up names the margin mode the order was sent in. An order this instance
        did not send (a restart) or whose mode it no longer remembers is asked for under
        ``margin_mode`` (ccxt's cross unless set) and, if "not found" there, under the other
        mode: a position in another mode than the client's is acted on in its own."""
        with self._ids_lock:
            known = self._order_margins.get(client_order_id)
        if known is not None:
            return self._fetch_order(None, symbol, {"clientOrderId": wire}, known)
        first = self.margin_mode or "cross"
        try:
            return self._fetch_order(None, symbol, {"clientOrderId": wire}, first)
        except Exception as e:
            if not _is_ccxt_error(e, "OrderNotFound"):
                raise
        other = "isolated" if first == "cross" else "cross"
        return self._fetch_order(None, symbol, {"clientOrderId": wire}, other)

    def _finished_order(self, wire: str, symbol: str) -> tuple[Any, list[Mapping[str, Any]]]:
        """Gate: the finished order of ``symbol`` whose custom id is ``wire`` among the contract's
        ``FINISHED_ORDERS_PAGE`` newest finished orders (``GET /futures/{settle}/orders``,
        ``status=finished``, which keeps an order's ``text`` for months where a look-up by it
        works for 60 s after the order ends), or ``None``; and the page read. An order without
        fills leaves that list 10 minutes after it was cancelled: it changed no position."""
        exchange = self.exchange
        exchange.load_markets()
        market = exchange.market(symbol)
        request = {
            "settle": market["settleId"],
            "contract": market["id"],
            "status": "finished",
            "limit": FINISHED_ORDERS_PAGE,
        }
        rows = exchange.privateFuturesGetSettleOrders(request)
        if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
            raise TypeError(
                f"/futures/{{settle}}/orders answered {answers.quoted(rows)}, not a list of orders"
            )
        matches = [row for row in rows if row.get("text") == wire]
        if len(matches) > 1:
            raise ValueError(
                f"{len(matches)} finished orders of {symbol} carry the custom id {wire}: "
                "cannot tell which one it was"
            )
        if not matches:
            return None, rows
        return exchange.parse_order(matches[0], market), rows

    def _mexc_order_by_external_oid(self, wire: str, symbol: str) -> Any:
        """MEXC futures: ccxt's ``fetch_order`` asks ``order/get/None`` when given a client id;
        the venue's own look-up is ``order/external/{symbol}/{external_oid}``."""
        exchange = self.exchange
        exchange.load_markets()
        market = exchange.market(symbol)
        response = exchange.contractPrivateGetOrderExternalSymbolExternalOid(
            {"symbol": market["id"], "external_oid": wire}
        )
        data = response.get("data") if isinstance(response, Mapping) else None
        if data is None:
            return None  # a successful answer without an order: not found
        if not isinstance(data, Mapping):
            raise TypeError(f"order/external answered {answers.quoted(response)}, not an order")
        return exchange.parse_order(data, market)

    def _bingx_order_by_client_id(self, wire: str, symbol: str) -> Any:
        """BingX: ccxt's ``fetch_order`` sends ``orderId=None`` next to the client id, so ask
        ``/openApi/swap/v2/trade/order`` (coin-margined markets:
        ``/openApi/cswap/v1/trade/orderDetail``) for the ``clientOrderId`` alone."""
        exchange = self.exchange
        exchange.load_markets()
        market = exchange.market(symbol)
        request = {"symbol": market["id"], "clientOrderId": wire}
        if market.get("inverse"):
            path = "/openApi/cswap/v1/trade/orderDetail"
            response = exchange.cswapV1PrivateGetTradeOrderDetail(request)
        else:
            path = "/openApi/swap/v2/trade/order"
            response = exchange.swapV2PrivateGetTradeOrder(request)
        data = response.get("data") if isinstance(response, Mapping) else None
        order = data.get("order", data) if isinstance(data, Mapping) else None
        if not isinstance(order, Mapping):
            raise TypeError(f"{path} answered {answers.quoted(response)}, not an order")
        return exchange.parse_order(order, market)

    def _bybit_order_by_link_id(self, wire: str, symbol: str) -> Any:
        """Bybit: ccxt's ``fetch_order`` sends ``orderId=None`` when asked by client order id, so
        ask ``/v5/order/realtime`` for the ``orderLinkId`` itself. That finds open orders and
        only the account's 500 most recent closed ones, none of them after a restart of Bybit's
        service (its v5 documentation); ``/v5/order/history`` keeps closed orders (those with
        fills for 7 days by default, cancelled ones without fills for 24 hours) but may lag new
        ones: an order neither finds is ``None``."""
        exchange = self.exchange
        exchange.load_markets()
        market = exchange.market(symbol)
        category = "inverse" if market.get("inverse") else "linear"
        request = {"category": category, "symbol": market["id"], "orderLinkId": wire}
        for path, ask in (
            ("/v5/order/realtime", exchange.privateGetV5OrderRealtime),
            ("/v5/order/history", exchange.privateGetV5OrderHistory),
        ):
            response = ask(request)
            result = response.get("result") if isinstance(response, Mapping) else None
            rows = result.get("list") if isinstance(result, Mapping) else None
            if not isinstance(rows, list):
                raise TypeError(f"{path} answered {answers.quoted(response)}, not an order list")
            if rows:
                return exchange.parse_order(rows[0], market)
        return None

    def _complete_fill(self, order: dict[str, Any], symbol: str) -> dict[str, Any]:
        """Fetch the order once when its creation answer lacks fill data; merge what came back."""
        if order.get("filled") and order.get("average"):
            return order
        order_id = order.get("id")
        if order_id is None or not self._has("fetchOrder"):
            return order
        try:
            fetched = self._fetch_order(order_id, symbol)
        except Exception as e:
            # The order was accepted: report it as created rather than fail the call.
            self.logger.warning(f"Could not fetch fill of order {order_id} on {symbol}: {_said(e)}")
            return order
        if not isinstance(fetched, Mapping):
            return order
        wire = order.get("clientOrderId")
        ids = () if wire is None else (str(wire), self.venue_client_order_id(str(wire)))
        other = other_order(fetched, symbol, order_id, ids)
        if other is not None:
            # Another order's data (a venue answering the wrong order) says nothing of this
            # one: merged in, a cancelled order's nothing-filled read as "nothing opened".
            self.logger.warning(
                f"The fetch of order {order_id} on {symbol} answered another order ({other}): "
                "its fill is reported as the order's answer gave it"
            )
            return order
        merged = dict(order)
        merged.update({k: v for k, v in fetched.items() if v is not None})
        if order.get("clientOrderId") is not None:
            merged["clientOrderId"] = order["clientOrderId"]  # the caller's id, not the wire form
        return merged

    # ------------------------------------------------------------------ reads

    def watch_symbols(self, symbols: Iterable[str]) -> None:
        """Makes every position list read from now on cover ``symbols``' markets.

        On venues where ccxt's ``fetch_positions()`` reads one kind of market only (see
        ``list_scope``: Bybit, Bitget, Gate, HTX, BingX, Hyperliquid), ``get_open_positions``
        reads the venue's default list plus the list of every market this client has been
        given a symbol of — by any method, or by this one. The manager calls it with the
        symbols it tracks before it reads a list (a position restored from a journal or a
        state file, or one the bot assigned, is then listed where it is); call it yourself to
        have positions opened by hand in other markets imported. A symbol ccxt has no market
        for yet is placed once the markets know it. Raises ``TypeError`` when ``symbols`` is
        not an iterable of strings.
        """
        if isinstance(symbols, str) or not isinstance(symbols, Iterable):
            raise TypeError(f"symbols must be an iterable of str, got {symbols!r}")
        asked = list(symbols)
        for symbol in asked:
            if not isinstance(symbol, str):
                raise TypeError(f"symbols must be an iterable of str, got {symbol!r} in it")
        if self.venue not in _DEFAULT_SCOPES:
            return
        self._loaded_markets()
        for symbol in asked:
            self._note(symbol)

    def _note(self, symbol: Any) -> None:
        """Makes the position lists cover ``symbol``'s market from now on (``watch_symbols``)."""
        if symbol in self._scoped or not isinstance(symbol, str):
            return
        venue = self.venue
        if venue not in _DEFAULT_SCOPES:
            return
        markets = getattr(self.exchange, "markets", None)
        market = markets.get(symbol) if isinstance(markets, Mapping) else None
        scope = list_scope(venue, market) if isinstance(market, Mapping) else None
        with self._state_lock:
            if not isinstance(market, Mapping):
                self._unscoped.add(symbol)
                return
            self._unscoped.discard(symbol)
            self._scoped.add(symbol)
            if scope is None or scope[0] == _DEFAULT_SCOPES[venue] or scope[0] in self._scopes:
                return
            self._scopes[scope[0]] = scope[1]
        self.logger.info(
            f"Position lists now also read {venue}'s {_scope_name(scope[0])} positions "
            f"(for {symbol})"
        )

    def _place_unscoped(self) -> None:
        """Notes the symbols told of before ccxt had their markets, for those it has now."""
        if not self._unscoped:
            return
        markets = getattr(self.exchange, "markets", None)
        if not isinstance(markets, Mapping):
            return
        with self._state_lock:
            ready = [s for s in self._unscoped if s in markets]
        for symbol in ready:
            self._note(symbol)

    def _lists(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """The ``fetch_positions`` params of every position list to read (``{}``: ccxt's
        default one, asked with no arguments): all of them, or the one holding ``symbol``."""
        if symbol is not None:
            self._loaded_markets()
            self._note(symbol)
            markets = getattr(self.exchange, "markets", None)
            market = markets.get(symbol) if isinstance(markets, Mapping) else None
            scope = list_scope(self.venue, market) if isinstance(market, Mapping) else None
            if scope is not None and scope[0] != _DEFAULT_SCOPES[self.venue]:
                return [scope[1]]
            if scope is not None or isinstance(market, Mapping):
                return [{}]
        self._place_unscoped()
        if self.every_position_list:
            self._note_every_market()
        with self._state_lock:
            return [{}, *(dict(params) for params in self._scopes.values())]

    def _note_every_market(self) -> None:
        """``every_position_list``: the lists of every kind of market the loaded markets hold
        are read from now on (one market of each kind is noted; markets loaded later are
        looked at when they are)."""
        venue = self.venue
        if venue not in _DEFAULT_SCOPES:
            return
        markets = self._loaded_markets()
        if not isinstance(markets, Mapping) or markets is self._markets_seen:
            return
        kinds: dict[tuple[Any, ...], str] = {}
        for symbol, market in list(markets.items()):
            if isinstance(market, Mapping) and isinstance(symbol, str):
                scope = list_scope(venue, market)
                if scope is not None:
                    kinds.setdefault(scope[0], symbol)
        for symbol in kinds.values():
            self._note(symbol)
        self._markets_seen = markets

    def _unpaged(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with ``paginate: False`` where the venue's ``method`` reads ccxt's
        ``paginate`` option (``NO_PAGING``), else ``params`` as they are."""
        if self.venue in NO_PAGING[method]:
            return {**params, "paginate": False}
        return params

    def _fetch_page(self, params: dict[str, Any]) -> list[Any]:
        """One ``fetch_positions`` call's entries, checked against the venue's own answer: an
        answer that is not the venue's position list (``_position_answers.check_answer``: an
        HTML page, an empty body, ``data: null``, another endpoint's JSON, which ccxt reads as
        no position) raises. The answer checked is that of the call's request to one of the
        venue's position-list endpoints (``_position_answers.position_answer``), wherever it
        came among the call's requests; a call whose requests went to several of them, or whose
        request to one of them failed, raises; one whose requests went to none of them checks
        the call's last answer, with one warning (``_position_answer``)."""
        failed: Exception | None = None
        with answers.recording() as heard:
            try:
                params = self._unpaged("fetch_positions", params)
                answer = (
                    self.exchange.fetch_positions(None, params)
                    if params
                    else self.exchange.fetch_positions()
                )
            except Exception as e:
                if not _parse_failure(e):
                    raise
                failed = e
        # by its endpoint: other requests may come before it (Binance's leverage brackets,
        # KuCoin's account mode, Bitget's account settings) or after it
        position = self._position_answer(heard) if heard else None
        if failed is not None:
            answer = self._parse_each(position, failed)
        if not isinstance(answer, (list, tuple)):
            raise TypeError(f"fetch_positions() answered {type(answer).__name__}, not a list")
        entries = list(answer)
        if heard:
            answers.check_answer(self.venue, position, entries)
        return entries

    def _position_answer(self, heard: list[answers.Heard]) -> Any:
        """The answer of the call's position-list request (``_position_answers.position_answer``).
        When none of the call's requests went to an endpoint of ``POSITION_ENDPOINTS`` — a ccxt
        release that moved the venue's endpoint — the call's last answer, as before the table
        (ccxt asks for the list last), with one warning per client: raising there would fail
        every list read, and with it every close (each reads the list first), until this
        package's table knew the new endpoint."""
        try:
            return answers.position_answer(self.venue, heard)
        except answers.UnknownEndpoint as e:
            with self._state_lock:
                told, self._told_endpoint = self._told_endpoint, True
            if not told:
                self.logger.warning(
                    f"{e}; checking its last answer as the position list instead (a ccxt "
                    "release this client does not know yet?)"
                )
            return e.last

    def _parse_each(self, answer: Any, error: Exception) -> list[Any]:
        """The entries of a position list ccxt's ``fetch_positions`` failed to parse
        (``error``, e.g. ``ValueError`` from a size ``'abc'``, ``'NaN'`` or ``'1e400'``): on the
        venues whose ``fetch_positions`` parses each entry of the list on its own
        (``_PARSED_ONE_BY_ONE``), each entry of the recorded ``answer`` is parsed by the
        exchange's ``parse_position``, and one that fails again is listed as presence only
        (``parse_error``: ccxt's error) under the symbol ccxt's market look-up gives its market
        id, so one bad entry does not hide the others (and block their closes). Raises
        ``ValueError`` naming the venue, ccxt's error and, where found, the entry and field
        that could not be read, when that cannot be done: another venue, no recorded answer
        (``answer`` is the one of the call's position-list request,
        ``_position_answers.position_answer``), an entry whose market cannot be looked up."""
        venue = self.venue
        container = None
        if answer is not None and venue in answers.RAW_SIZE_FIELDS:
            container, where = answers.position_container(venue, answer)
            if container is not None:
                answers.check_elements(venue, container, where)
        failed = f"{type(error).__name__}: {error}"
        risk = venue in _BINANCE and isinstance(answer, list)
        if container is None or venue not in _PARSED_ONE_BY_ONE or (venue in _BINANCE and not risk):
            found = answers.unreadable_entries(venue, container) if container else ""
            page = answer is not None and not isinstance(answer, (Mapping, list))
            raise ValueError(
                f"ccxt could not read {venue}'s position list ({failed})"
                + (f"; unreadable: {found}" if found else "")
                + (f": its answer is {answers.answer_kind(answer)}" if page else "")
            ) from error
        parse = self.exchange.parse_position_risk if risk else self.exchange.parse_position
        entries: list[Any] = []
        bad: list[str] = []
        for index, raw in enumerate(container):
            element = raw
            if venue == "bybit" and isinstance(raw, Mapping) and "is_valid" in raw:
                element = raw.get("data")
            try:
                if risk and not _above_zero(element.get("entryPrice")):
                    continue  # ccxt leaves it out (check_answer: an open one fails the read)
                entries.append(parse(element))
                continue
            except Exception as e:
                if not _parse_failure(e):
                    raise
                why = f"{type(e).__name__}: {e}"
            value, named = (
                answers.market_id(venue, element)
                if isinstance(element, Mapping)
                else (None, answers.quoted(element, 60))
            )
            symbol = self._symbol_of(value)
            detail = why
            if answers.carries_size(venue, element):
                state, size_why = answers.raw_size(venue, element)
                detail = size_why if state == "unreadable" else why
            shown = f"#{index} ({named}: {detail})"
            if symbol is None:
                raise ValueError(
                    f"ccxt could not read {venue}'s position list ({failed}): entry {shown}, "
                    "whose market cannot be looked up"
                ) from error
            bad.append(shown)
            entries.append(
                {
                    "symbol": symbol,
                    "side": None,
                    "contracts": None,
                    "info": element,
                    "parse_error": why,
                }
            )
        if venue == "bybit" and entries and isinstance(answer, Mapping):
            # ccxt notes the next page's cursor on the first entry of a page
            result = answer.get("result")
            cursor = result.get("nextPageCursor") if isinstance(result, Mapping) else None
            first = entries[0].get("info")
            if cursor and isinstance(first, dict):
                first.setdefault("nextPageCursor", cursor)
        self.logger.warning(
            f"ccxt could not read {venue}'s position list whole ({failed}): read entry by "
            f"entry; listed as presence only: {', '.join(bad) or 'none'}"
        )
        return entries

    def _symbol_of(self, market_id: Any) -> str | None:
        """The unified symbol of a venue market id, when ccxt's loaded markets know it."""
        if not isinstance(market_id, str) or not market_id:
            return None
        exchange = self.exchange
        markets = getattr(exchange, "markets", None)
        try:
            if self.venue == "hyperliquid":
                market_id = exchange.coin_to_market_id(market_id)
            delimiter = "_" if self.venue in ("gate", "gateio") else None
            market = exchange.safe_market(market_id, None, delimiter, "contract")
        except Exception:
            return None
        symbol = market.get("symbol") if isinstance(market, Mapping) else None
        if isinstance(symbol, str) and isinstance(markets, Mapping) and symbol in markets:
            return symbol
        return None

    def _fetch_list(self, params: dict[str, Any]) -> list[Any]:
        """One position list's entries (``fetch_positions``), every page of it (Bybit pages
        hold 200 entries and name the next one); raises when it cannot be read whole."""
        entries = self._fetch_page(params)
        page = entries
        pages = 1
        while self.venue == "bybit" and len(page) >= BYBIT_POSITIONS_PAGE:
            first = page[0] if isinstance(page[0], Mapping) else {}
            cursor = _info(first).get("nextPageCursor")
            if not cursor:
                break
            if pages >= _BYBIT_MAX_PAGES:
                raise RuntimeError(
                    f"Bybit's position list still had more pages after {pages} pages of "
                    f"{BYBIT_POSITIONS_PAGE}: not read whole"
                )
            page = self._fetch_page({**params, "cursor": cursor})
            entries.extend(page)
            pages += 1
        return entries

    def get_open_positions(self) -> list[dict[str, Any]]:
        """Open positions as ccxt unified position dicts (``exchange.fetch_positions()``).

        On venues whose ccxt list holds one kind of market (see ``list_scope``), every list
        the positions may be in is read — the default one, and that of every market this
        client was given a symbol of (``watch_symbols``) — and a failure of any of them fails
        the whole read; a Bybit list is read page by page to its end.

        Every entry carries ``side`` ('long'/'short'; presence-only entries, below, may carry
        a text instead) and ``hedged`` (a bool, see ``entry_hedged``); in hedge mode a symbol
        may have two entries, one per leg. Entries that are flat are placeholders (closed
        positions, legs of a hedge-mode symbol that hold nothing) and are dropped after their
        mode is noted: on the venues of
        ``_position_answers.RAW_SIZE_FIELDS`` (the ten of docs/ccxt-client.md) those whose
        venue size field (in ``info``) reads 0, elsewhere those whose ``contracts`` is ``None``
        or 0. An entry whose size or side cannot be read (that field missing, null, empty, a
        bool or not a number; HTX and MEXC legs read from the venue's own fields) is kept as
        presence only: it carries ``unreadable`` (what could not be read, e.g. ``"okx 'pos' is
        None"``), the protocol's mark the manager reads as a listed but unusable entry (a
        tracked position is kept, nothing is changed, a warning names the symbol), and its
        ``contracts`` and/or ``side`` become the text ``"unreadable (...)"`` (no made-up number
        is left for a direct reader). An entry of a market ccxt does not
        know triggers one reload of the markets and a second read (at most once per
        ``markets_reload_seconds``); if it is still unknown it is kept, with a warning once per
        symbol — or, when its id does not have the form of the venue's market ids (``'abc'``,
        ``0``), it gets ``symbol`` ``None`` and ``unmapped`` (``_unmapped``), so that list
        removes no position. Legs of Binance, Bybit, OKX and Gate entries are read from the
        venue's fields, which must agree (``entry_side``). Gate cross positions get their cross
        leverage.
        A list ccxt fails to parse (``'abc'`` as a size) is read entry by entry where ccxt
        parses each on its own (``_parse_each``).
        Raises on any failure —
        including an answer that is not the venue's position list although ccxt read it as one
        (an HTML page, an empty body, ``data: null``, another endpoint's JSON: ccxt's own
        answer to those is ``[]``) — and never answers ``[]`` for an error: an empty list
        means "no open position".
        """
        return self._open_positions(None)

    def _open_positions(self, symbol: str | None) -> list[dict[str, Any]]:
        """``get_open_positions``, from every list or from the one holding ``symbol``."""
        entries = self._read_entries(symbol)
        if self._unknown_entries(entries) and self._may_reload_markets():
            self.exchange.load_markets(True)
            entries = self._read_entries(symbol)
        positions: list[dict[str, Any]] = []
        for entry in entries:
            reading, why = self._reading(entry)
            if reading == "flat":
                continue  # a placeholder
            if self._is_unknown(entry) and self._unmapped(entry):
                positions.append(entry)  # attributed to no symbol: proves no absence
                continue
            if reading != "listed":
                # Presence only: the symbol is listed, its size or side cannot be read. The
                # manager reads the ``unreadable`` mark (keeps a tracked position, changes
                # nothing, warns); the texts in ``contracts``/``side`` leave no made-up
                # number (Binance's size estimated from the notional) to a direct reader.
                text = f"unreadable ({why})"
                entry["unreadable"] = why
                if reading == "size":
                    entry["contracts"] = text
                if entry.get("side") not in ("long", "short"):
                    entry["side"] = text
            if self._is_unknown(entry):
                self._warn_unknown(entry)
            positions.append(entry)
        if self.venue in _LEVERAGE_MARGIN_VENUES:
            self._note_margins(symbol, positions)
        return positions

    def _note_margins(self, symbol: str | None, positions: list[dict[str, Any]]) -> None:
        """Notes the margin mode of each listed position (every list read, or ``symbol``'s):
        the mode later orders on it name."""
        listed = {
            (p["symbol"], p["side"]): mode
            for p in positions
            if isinstance(p.get("symbol"), str)
            and p.get("side") in ("long", "short")
            and (mode := _margin_of(p)) is not None
        }
        with self._state_lock:
            if symbol is None:
                self._listed_margin = listed
                self._margins_all_read = True
            else:
                self._margin_symbols_read.add(symbol)
                for leg in ("long", "short"):
                    self._listed_margin.pop((symbol, leg), None)
                self._listed_margin.update(
                    (key, mode) for key, mode in listed.items() if key[0] == symbol
                )

    def _read_entries(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """The entries of every position list (or of the one holding ``symbol``), checked and
        normalised; notes each symbol's mode."""
        answer = [raw for params in self._lists(symbol) for raw in self._fetch_list(params)]
        entries: list[dict[str, Any]] = []
        for raw in answer:
            if not isinstance(raw, Mapping):
                raise TypeError(f"fetch_positions() entry is {type(raw).__name__}, not a dict")
            entries.append(self._normalise(raw))
        return entries

    def _normalise(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        entry = dict(raw)
        info = _info(entry)
        side = entry_side(entry, self.venue)
        hedged = entry_hedged(entry, self.venue)
        if hedged is None and self.venue in _ONE_WAY_VENUES:
            hedged = False
        symbol = entry.get("symbol")
        if entry.get("contracts") is None and self.venue == "bitget":
            # Bitget lists sizes in the base coin; ccxt divides by the market's contract size
            # and gets None for a market it does not know: the base-coin size is the size.
            total = _number(info.get("total"))
            if total is not None and math.isfinite(total):
                entry["contracts"] = abs(total)
                entry.setdefault("contractSize", 1.0)
                if entry.get("contractSize") is None:
                    entry["contractSize"] = 1.0
        if self.venue in ("gate", "gateio"):
            limit = _number(info.get("cross_leverage_limit"))
            if _number(entry.get("leverage")) in (None, 0.0) and str(info.get("leverage")) == "0":
                if isinstance(symbol, str):
                    with self._state_lock:
                        self._cross[symbol] = True
                if limit is not None and limit > 0:
                    entry["leverage"] = limit
            elif isinstance(symbol, str) and info.get("leverage") is not None:
                with self._state_lock:
                    self._cross[symbol] = False
        if self.venue in _SYMBOL_MARGIN_VENUES and isinstance(symbol, str):
            mode = _margin_of(entry)
            if mode is not None:
                with self._state_lock:
                    self._cross[symbol] = mode == "cross"
        if self.venue == "bingx":
            # BingX lists the direction in positionSide in both modes; onlyOnePosition says
            # which mode (true: one-way). Without it, the account's setting decides.
            only_one = info.get("onlyOnePosition")
            if isinstance(only_one, bool):
                hedged = not only_one
            elif side is not None:
                hedged = self._venue_mode
                if hedged is None:
                    hedged = self._ask_venue_mode(symbol if isinstance(symbol, str) else None)
        if hedged is None and self.venue == "mexc" and side is not None:
            # MEXC's entries do not say; its account-wide setting does (asked once).
            hedged = self._venue_mode
            if hedged is None:
                hedged = self._ask_venue_mode(symbol if isinstance(symbol, str) else None)
        if hedged is not None:
            with self._state_lock:
                if isinstance(symbol, str):
                    self._symbol_hedged[symbol] = hedged
                self._account_hedged = hedged
        entry["side"] = side
        entry["hedged"] = bool(hedged)
        return entry

    def _reading(self, entry: Mapping[str, Any]) -> tuple[str, str]:
        """How a normalised entry reads: ``('flat', '')`` for a placeholder, ``('listed', '')``
        for a usable position (a side and a size > 0), else ``('size', why)`` or ``('side',
        why)``: presence only, ``why`` naming what cannot be read.

        On the venues of ``_position_answers.RAW_SIZE_FIELDS`` an entry is flat only when the
        venue's own size field (in ``info``) reads 0; a size field that is missing, null,
        empty, a bool or not a number, a nonzero size ccxt could not read, or a nonzero size
        without a readable side is presence only. On other venues an entry with ``contracts``
        ``None`` or 0 is a placeholder (ccxt's reading is all there is), and one with another
        size that is not a number > 0, or with no readable side, is presence only.
        """
        venue = self.venue
        info = entry.get("info")
        contracts = entry.get("contracts")
        failed = entry.get("parse_error")
        if failed and isinstance(info, Mapping):
            state, why = (
                answers.raw_size(venue, info) if venue in answers.RAW_SIZE_FIELDS else ("", "")
            )
            return "size", f"ccxt could not read the entry ({failed})" + (f": {why}" if why else "")
        if venue in answers.RAW_SIZE_FIELDS and not (isinstance(info, Mapping) and info):
            # ccxt made it from something that was no entry of the venue's (``""``, ``null``,
            # ``{}``): nothing says it is flat.
            return (
                "size",
                f"{venue} entry is {answers.quoted(info, 60)}, not the venue's position entry",
            )
        if venue in answers.RAW_SIZE_FIELDS and isinstance(info, Mapping):
            # ccxt's own contracts may be made up when the venue's size is not there (from
            # the notional on Binance and Bybit): the venue's field is what counts.
            state, why = answers.raw_size(venue, info)
            if state == "flat":
                return "flat", ""
            if state == "unreadable":
                return "size", why
            if not _listed_size(contracts):
                return "size", f"contracts is {contracts!r} ({why})"
        else:
            if contracts is None or _number(contracts) == 0:
                return "flat", ""
            if not _listed_size(contracts):
                return "size", f"contracts is {contracts!r}"
        if entry.get("side") not in ("long", "short"):
            return "side", f"side unreadable: {answers.side_fields(venue, entry)}"
        return "listed", ""

    def _is_unknown(self, entry: Mapping[str, Any]) -> bool:
        """Whether the entry names a market missing from the loaded markets."""
        markets = getattr(self.exchange, "markets", None)
        if not isinstance(markets, Mapping) or not markets:
            return False
        symbol = entry.get("symbol")
        return not isinstance(symbol, str) or symbol not in markets

    def _unknown_entries(self, entries: list[dict[str, Any]]) -> bool:
        """Whether some open entry names an unknown market (or has an unreadable size)."""
        for entry in entries:
            contracts = entry.get("contracts")
            if _number(contracts) == 0:
                continue
            if self._is_unknown(entry) or (
                contracts is None and _number(_info(entry).get("total"))
            ):
                return True
        return False

    def _unmapped(self, entry: dict[str, Any]) -> bool:
        """Whether an open entry of a market ccxt does not know names no market of the venue's
        at all (``_position_answers.plausible_market_id``: ``'abc'``, ``0``, ``''``, a missing
        id), as a mangled entry of a tracked position may: then its ``symbol`` becomes
        ``None`` (``unmapped`` says what it named), which the manager reads as an entry it
        cannot attribute to any symbol — the list then proves no position absent, and the
        other entries are read as usual — and a warning names the venue's id, each read. An
        id with the form of the venue's market ids (a market listed after the markets were
        loaded) is kept as the venue reports it (``_warn_unknown``)."""
        venue = self.venue
        info = entry.get("info")
        if venue not in answers.MARKET_ID_FIELDS or not isinstance(info, Mapping) or not info:
            return False
        value, named = answers.market_id(venue, info)
        markets = getattr(self.exchange, "markets", None)
        if not isinstance(markets, Mapping) or answers.plausible_market_id(venue, value, markets):
            return False
        entry["unmapped"] = named
        entry["symbol"] = None
        self.logger.warning(
            f"An open entry of {venue}'s position list names a market ccxt does not know "
            f"({named}), and no market of {venue}'s could be named so: it cannot be "
            "attributed to a symbol, so this list cannot show any position closed (tracked "
            "positions are kept; the others are read as usual)"
        )
        return True

    def _may_reload_markets(self) -> bool:
        if not callable(getattr(self.exchange, "load_markets", None)):
            return False
        now = self.clock()
        with self._state_lock:
            last = self._markets_reloaded_at
            if last is not None and now - last < self.markets_reload_seconds:
                return False
            self._markets_reloaded_at = now
        return True

    def _warn_unknown(self, entry: Mapping[str, Any]) -> None:
        symbol = str(entry.get("symbol"))
        with self._state_lock:
            if symbol in self._warned_unknown:
                return
            self._warned_unknown.add(symbol)
        self.logger.warning(
            f"Position in {symbol}, a market ccxt does not know (listed after the markets were "
            "loaded?): kept as the venue reports it; its size and symbol may not be in unified "
            "form until the markets reload"
        )

    def _loaded_markets(self) -> Any:
        """The exchange's markets, loaded first if they are not yet (``load_markets``), at most
        one load at a time: reads may come from several threads at once
        (``max_concurrent_calls``), and ccxt's ``load_markets`` is not safe to run twice at
        once (a read meanwhile can see half-built market maps)."""
        markets = getattr(self.exchange, "markets", None)
        if markets:
            return markets
        load = getattr(self.exchange, "load_markets", None)
        if not callable(load):
            return markets
        with self._markets_lock:
            markets = getattr(self.exchange, "markets", None)
            return markets if markets else load()

    def get_ticker(self, symbol: str) -> dict[str, Any] | None:
        """The ccxt unified ticker of ``symbol`` (``fetch_ticker``; ``last`` is the price).

        Raises on failure.
        """
        self._loaded_markets()
        self._note(symbol)
        ticker = self._fetch_ticker(symbol)
        if ticker is None:
            return None
        return dict(ticker)

    def _read(
        self, what: str, call: Callable[[], Any], then: str = ""
    ) -> tuple[Any, list[answers.Heard]]:
        """``call()`` (one ccxt read, ``what`` for the error) and the requests it made, checked
        to have been answered with the venue's JSON: when one was answered with a page or a
        body of no text type (``_position_answers.not_json``), which ccxt reads as an answer
        with nothing in it or fails on, raises ``ValueError`` naming it (after ``then``; chained
        to ccxt's error when ccxt failed on it), with a warning when ``then`` is given. ccxt's
        own errors (its synchronous class's for a 524 page) go on unchanged, but for its
        ``BadResponse`` (an answer it could not read)."""
        failed: Exception | None = None
        with answers.recording() as heard:
            try:
                result = call()
            except Exception as e:
                # ccxt's own errors go on, but for those saying it could not read an answer
                # (``BadResponse``, ``NullResponse``: Gate's ticker of a page)
                if _is_ccxt_error(e, "BaseError") and not _is_ccxt_error(e, "BadResponse"):
                    raise
                failed = e
        why = answers.not_json(heard)
        if why is None:
            if failed is not None:
                raise failed
            return result, heard
        message = f"{what}: {why}{then}"
        if then:
            self.logger.warning(message)
        raise ValueError(message) from failed

    def _fetch_ticker(self, symbol: str) -> Any:
        """``fetch_ticker(symbol)``, checked to be ``symbol``'s ticker: an answer that is not
        the venue's JSON (``_read``: a page, a body of no text type), a ticker that names
        another market (``ticker_names_other``), or one that ccxt matched to its market by
        place in an answer whose lists do not line up (Hyperliquid, ``_misaligned_contexts``),
        raises ``ValueError`` after a warning: there is no price of ``symbol`` in it."""
        ticker, heard = self._read(
            f"fetch_ticker({symbol!r})",
            lambda: self.exchange.fetch_ticker(symbol),
            f"; no price for {symbol} from it",
        )
        why = _misaligned_contexts(heard) if self.venue == "hyperliquid" else None
        if why is None and isinstance(ticker, Mapping):
            market = self._market_of(symbol)
            other = ticker_names_other(self.venue, market, ticker, heard) if market else None
            if other is not None:
                why = f"the venue answered the ticker of another market ({other})"
        if why is not None:
            message = f"fetch_ticker({symbol!r}): {why}; no price for {symbol} from it"
            self.logger.warning(message)
            raise ValueError(message)
        return ticker

    def _market_of(self, symbol: str) -> Mapping[str, Any] | None:
        """ccxt's market of ``symbol`` (a unified symbol or, as ccxt's ``market()`` takes it,
        a venue id), ``None`` when it has none."""
        markets = getattr(self.exchange, "markets", None)
        market = markets.get(symbol) if isinstance(markets, Mapping) else None
        if market is None and callable(getattr(self.exchange, "market", None)):
            try:
                market = self.exchange.market(symbol)
            except Exception:
                return None
        return market if isinstance(market, Mapping) else None

    def get_tickers(self, symbols: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The ccxt unified tickers of ``symbols``, ``{symbol: ticker}``, in as few requests as
        the venue allows (``fetch_tickers``): one per kind of market asked about.

        ccxt picks the endpoint from the first symbol of the list (Binance, Bitget, Gate, HTX,
        BingX, KuCoin, Hyperliquid) or refuses a list that mixes market types (Bybit, and
        ``market_symbols`` where a class asks for one type), so symbols go in one request per
        market type, linear/inverse sub-type and settle currency (and Hyperliquid's HIP-3
        markets apart). Symbols the markets do not know, and any the answer leaves out, are
        not in the answer: the manager asks ``get_ticker`` for those. ``{}`` without a request
        when the exchange has no ``fetchTickers``. A failed request for one kind of market is
        logged and its symbols left out; raises when every request failed.
        """
        asked = list(dict.fromkeys(s for s in symbols if isinstance(s, str)))
        if not asked or not self._has("fetchTickers"):
            return {}
        markets = self._loaded_markets()
        groups: dict[tuple[Any, ...], list[str]] = {}
        for symbol in asked:
            market = markets.get(symbol) if isinstance(markets, Mapping) else None
            if isinstance(market, Mapping):
                self._note(symbol)
                groups.setdefault(_tickers_group(market), []).append(symbol)
        answer: dict[str, dict[str, Any]] = {}
        failure: Exception | None = None
        for group in groups.values():
            try:
                tickers, heard = self._read(
                    "fetch_tickers()", functools.partial(self.exchange.fetch_tickers, group)
                )
                why = _misaligned_contexts(heard) if self.venue == "hyperliquid" else None
                if why is not None:
                    raise ValueError(why)
            except Exception as e:
                failure = failure or e
                self.logger.warning(
                    f"Could not fetch the tickers of {len(group)} symbol(s) in one request "
                    f"({type(e).__name__}: {_said(e)}); they are asked one by one"
                )
                continue
            if isinstance(tickers, Mapping):
                for symbol in group:
                    ticker = tickers.get(symbol)
                    if isinstance(ticker, Mapping):
                        answer[symbol] = dict(ticker)
        if failure is not None and not answer:
            raise failure
        return answer

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[Any]:
        """Candles ``[timestamp_ms, open, high, low, close, volume]``, oldest first.

        ``fetch_ohlcv(symbol, timeframe, limit=limit)``; raises on failure, and raises
        ``ValueError`` for an answer that is not the venue's JSON (a page, a body of no text
        type: ``_read``), and for candles that are not ``timeframe``'s (``candle_problem``: a
        time twice, or two candles a distance apart that is no whole number of ``timeframe``).
        """
        self._loaded_markets()
        self._note(symbol)
        paging = self._unpaged("fetch_ohlcv", {})
        candles, _ = self._read(
            f"fetch_ohlcv({symbol!r}, {timeframe!r})",
            lambda: (
                self.exchange.fetch_ohlcv(symbol, timeframe, limit=limit, params=paging)
                if paging
                else self.exchange.fetch_ohlcv(symbol, timeframe, limit=limit)
            ),
        )
        rows = list(candles) if candles is not None else []
        problem = candle_problem(rows, timeframe)
        if problem is not None:
            raise ValueError(
                f"fetch_ohlcv({symbol!r}, {timeframe!r}) answered candles that cannot be "
                f"used: {problem}"
            )
        return rows

    def get_market_limits(self, symbol: str) -> dict[str, Any] | None:
        """Order-size limits of ``symbol`` from ``load_markets()``; ``None`` for an unknown symbol.

        Returns ``{'amount': {'min', 'max', 'step'}, 'cost': {'min', 'max'}}`` (values may be
        ``None``). ``step`` is the amount precision as a step size: ccxt's ``TICK_SIZE`` precision
        mode gives it directly, ``DECIMAL_PLACES`` *n* gives ``10 ** -n``, ``SIGNIFICANT_DIGITS``
        gives ``None``. Raises when the markets cannot be loaded.
        """
        markets = self.exchange.load_markets()
        market = markets.get(symbol) if isinstance(markets, Mapping) else None
        if not isinstance(market, Mapping):
            return None
        self._note(symbol)
        limits = market.get("limits") or {}
        amount = limits.get("amount") or {}
        cost = limits.get("cost") or {}
        precision = market.get("precision") or {}
        return {
            "amount": {
                "min": amount.get("min"),
                "max": amount.get("max"),
                "step": self._amount_step(precision.get("amount")),
            },
            "cost": {"min": cost.get("min"), "max": cost.get("max")},
        }

    def _amount_step(self, precision: Any) -> float | None:
        """The amount precision of a market as a step size (see ``get_market_limits``)."""
        value = _number(precision)
        if value is None:
            return None
        mode = getattr(self.exchange, "precisionMode", _TICK_SIZE)
        if mode == _TICK_SIZE:
            return value
        if mode == _DECIMAL_PLACES:
            return float(10.0**-value)
        return None

    # ------------------------------------------------------------------ orders

    def create_market_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        leverage: int | float = 10,
        reduce_only: bool = False,
        is_critical: bool = False,
        client_order_id: str | None = None,
        position_side: str | None = None,
    ) -> dict[str, Any] | None:
        """Place a market order; the ccxt unified order dict, or ``None`` if rejected.

        Before an opening (non-reduce-only) order the leverage is set when the exchange supports
        ``setLeverage`` (best effort: a failure is logged; per leg where the venue wants one).
        The order is ``create_order(symbol, 'market', side, amount, price, params)`` with
        ``{'reduceOnly': True}`` when ``reduce_only``, the leg when the account is in hedge mode
        (see the module docstring) and the venue's extras (KuCoin, and MEXC isolated: the
        leverage). ``price`` is ``None`` except on venues that need one for a market
        order (Hyperliquid: the ticker's, bounded by ``market_slippage``). ``position_side``
        ('long'/'short') names the leg: the one a reduce-only order reduces (then ``side`` must
        be 'sell' for 'long', 'buy' for 'short') or the one an opening order adds to; by
        default the leg follows from ``side``. When the answer carries no fill
        (``filled``/``average`` missing or zero) and the exchange can ``fetchOrder``, the order
        is fetched once to report them. A definitive rejection returns ``None``; an unknown
        outcome (network error, timeout, 5xx, ...) raises. ``is_critical`` is accepted for
        compatibility with the bot's client and has no effect. ``client_order_id`` is sent as
        ``params['clientOrderId']``; an id already sent (by this instance, or refused by the
        exchange as a duplicate) raises ``DuplicateClientOrderId``.
        """
        leg = _leg_of(side, reduce_only, position_side)
        self._claim(client_order_id)
        return self._market(symbol, side, amount, leverage, reduce_only, leg, None, client_order_id)

    def _market(
        self,
        symbol: str,
        side: str,
        amount: float,
        leverage: Any,
        reduce_only: bool,
        leg: str,
        hedged: bool | None,
        client_order_id: str | None,
        margin: str | None = None,
    ) -> dict[str, Any] | None:
        self._note(symbol)
        if hedged is None:
            hedged = self.is_hedged(symbol)
        params = self._order_setup(symbol, reduce_only, leg, leverage, hedged, margin)
        price: float | None = None
        if self.venue in _PRICED_MARKET_ORDER_VENUES:
            try:
                price = self._market_price(symbol, side)
            except Exception as e:
                price = None
                self.logger.error(f"Market order {side} {amount} {symbol} not sent: {_said(e)}")
            if price is None:
                self.logger.error(
                    f"Market order {side} {amount} {symbol} not sent: no price to bound it with"
                )
                self._note_refused(client_order_id)  # nothing was sent: "never placed" at once
                return None
            if self.market_slippage is not None:
                params["slippage"] = self.market_slippage
        order = self._place(symbol, "market", side, amount, price, params, client_order_id)
        if order is None:
            return None
        return self._complete_fill(order, symbol)

    def create_limit_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        price: float,
        leverage: int | float = 10,
        post_only: bool = False,
        reduce_only: bool = False,
        is_critical: bool = False,
        client_order_id: str | None = None,
        position_side: str | None = None,
    ) -> dict[str, Any] | None:
        """Place a limit order; the ccxt unified order dict as created, or ``None`` if rejected.

        ``create_order(symbol, 'limit', side, amount, price, params)`` with ``postOnly`` and
        ``reduceOnly`` params when asked, the leg in hedge mode and the venue's extras as for
        market orders; the leverage is set first as for market orders. A post-only order the
        exchange refuses because it would take liquidity is a rejection (``None``). Failure
        semantics, ``client_order_id`` and ``position_side`` as ``create_market_order``.
        """
        leg = _leg_of(side, reduce_only, position_side)
        self._claim(client_order_id)
        self._note(symbol)
        params = self._order_setup(symbol, reduce_only, leg, leverage, self.is_hedged(symbol))
        if post_only:
            params["postOnly"] = True
        return self._place(symbol, "limit", side, amount, price, params, client_order_id)

    def close_position(
        self,
        symbol: str,
        client_order_id: str | None = None,
        side: str | None = None,
        contracts: float | None = None,
    ) -> bool:
        """Close the open position of ``symbol`` (or its ``side`` leg) with a reduce-only order.

        Fetches the positions afresh. ``side`` ('long'/'short') closes that leg only (hedge
        mode: the other leg is never touched, and an entry of the symbol whose side cannot be
        read does not stop the close of a leg with one readable entry); without it the
        symbol's one open entry is closed, and when both legs are open nothing is sent
        (``False``, logged: name the leg). An entry that cannot be read and may be the one to
        close (one-way mode; the named leg's own) raises ``ValueError``, nothing sent.
        ``False`` when there is no open position to close (never reports a close that did
        not happen) or when the close order is definitively rejected; ``True`` when the
        exchange accepted the order. Raises when the positions cannot be read or the order's
        outcome is unknown. The close order carries ``client_order_id`` when given (an id
        already sent raises ``DuplicateClientOrderId`` before anything is read or sent).

        The order is for the listed size, or for ``contracts`` (the manager's size, rounded to
        the market's amount step) when the list differs from that by half a step or more: a
        venue's list can lag a reduction that already filled (a reduce-only order larger than
        the position is refused by venues such as HTX and MEXC, which would leave the whole
        position open until the next close), or the manager's own scale-in (closing the listed
        size would leave the scaled-in contracts open, unmanaged, while the manager takes the
        position for closed). Were the list right after all (a reduction by hand between the
        manager's read and this one), a venue that refuses a reduce-only order larger than the
        position refuses it: nothing is placed, ``False``, and the manager's next read sizes
        the next close.
        """
        if side not in (None, "long", "short"):
            raise ValueError(f"side must be None, 'long' or 'short', got {side!r}")
        if contracts is not None and not (
            isinstance(contracts, (int, float))
            and not isinstance(contracts, bool)
            and math.isfinite(contracts)
            and contracts > 0
        ):
            raise ValueError(f"contracts must be None or a number > 0, got {contracts!r}")
        if client_order_id is not None:
            with self._ids_lock:
                if client_order_id in self._sent_ids:
                    raise DuplicateClientOrderId(client_order_id)
        legs = [p for p in self._open_positions(symbol) if p.get("symbol") == symbol]
        named = f"{symbol} {side}" if side is not None else symbol
        unreadable = [
            p["unreadable"]
            for p in legs
            if p.get("unreadable")
            and (side is None or p.get("side") == side or p.get("side") not in ("long", "short"))
        ]
        readable = [p for p in legs if not p.get("unreadable") and p.get("side") == side]
        if (
            unreadable
            and side is not None
            and len(readable) == 1
            and (self.is_hedged(symbol) or any(p.get("hedged") is True for p in legs))
            and not any(p.get("unreadable") and p.get("side") == side for p in legs)
        ):
            # Hedge mode: the named leg has one readable entry, and the order names its leg,
            # so it can act on that leg only; an entry whose side cannot be read does not
            # stop it (in one-way mode it might be the very position: refused below).
            self.logger.warning(
                f"Closing {named}: its entry is readable; another entry of {symbol} cannot be "
                f"read ({'; '.join(unreadable)})"
            )
            unreadable = []
        if unreadable:
            # Listed, but its size or side cannot be read: no order can be sized or sided
            # from it (nothing is sent; the manager keeps the position and tries again).
            raise ValueError(
                f"Not closing {named}: the exchange lists it, but its entry cannot be read "
                f"({'; '.join(unreadable)})"
            )
        if side is not None:
            legs = [p for p in legs if p.get("side") == side]
        if not legs:
            self.logger.info(f"No open position for {named} on the exchange: nothing to close")
            return False
        if len(legs) > 1:
            self.logger.error(
                f"Not closing {named}: the exchange lists {len(legs)} open entries for it "
                "(hedge mode: close_position(symbol, side='long'|'short') names the leg)"
            )
            return False
        position = legs[0]
        size = _number(position.get("contracts"))
        if size is None or size == 0:
            return False
        amount = self._close_amount(symbol, named, abs(size), contracts)
        leg = str(position.get("side"))
        order_side = "sell" if leg == "long" else "buy"
        self._claim(client_order_id)
        leverage = position.get("leverage")
        order = self._market(
            symbol,
            order_side,
            amount,
            leverage if _number(leverage) else None,
            True,
            leg,
            bool(position.get("hedged")) or self.is_hedged(symbol),
            client_order_id,
            _margin_of(position),
        )
        if isinstance(order, Mapping) and _ended_unfilled(order):
            # The venue's final word: the order ended with nothing filled (a market order
            # cancelled or expired unfilled: no liquidity, a price band). Nothing was closed.
            self.logger.warning(
                f"The close order of {named} ended {order.get('status')} with nothing filled: "
                "the position is not closed"
            )
            return False
        if order is not None and amount >= abs(size):
            with self._state_lock:  # closed: a new position there takes ``margin_mode``
                self._listed_margin.pop((symbol, leg), None)
        return order is not None

    def _close_amount(
        self, symbol: str, named: str, listed: float, contracts: float | None
    ) -> float:
        """What a close of ``named`` sends: ``listed``, or the manager's ``contracts`` rounded
        to the amount step when the list shows at least half a step more or less."""
        if contracts is None or contracts == listed:
            return listed
        try:
            limits = self.get_market_limits(symbol)
        except Exception as e:  # the markets are needed for the order anyway; ccxt will say
            self.logger.debug(
                f"Amount step of {symbol} unknown ({_said(e)}); closing the listed size"
            )
            return listed
        step = _number(((limits or {}).get("amount") or {}).get("step"))
        amount = close_amount(listed, contracts, step)
        if amount == listed:
            return listed
        lag = "a reduction" if amount < listed else "an increase"
        self.logger.info(
            f"Closing {named}: {amount} contracts, the manager's size; the exchange lists "
            f"{listed} (its list may lag {lag} that filled)"
        )
        return amount

    def get_order_by_client_id(self, client_order_id: str, symbol: str) -> dict[str, Any] | None:
        """The order sent with ``client_order_id`` on ``symbol``; ``None`` if the exchange has none.

        ``fetch_order(None, symbol, {'clientOrderId': client_order_id})`` (ccxt's unified
        parameter; Binance sends it as ``origClientOrderId``). The ccxt order dict (``id``,
        ``clientOrderId``, ``symbol``, ``side``, ``amount``, ``filled``, ``average``, ``status``,
        ``reduceOnly``, ...). ``None`` only on the exchange's definitive "no such order" (ccxt
        ``OrderNotFound``) for an id this instance did not send within the last
        ``not_found_grace`` seconds, and at once, without a request, for an id whose order this
        instance saw the exchange refuse (nothing was placed); raises on anything else (network
        error, an exchange without ``fetchOrder``, an answer for another id, a success without
        an order on a venue whose "not found" is an error, such as an HTX error code ccxt does
        not map): the caller cannot tell. KuCoin futures answers an unknown id with ``data``
        null: that is its "no such order".

        Gate finds an order by its custom id only while it is open and for 60 s after it ends:
        past that (or for an id this instance did not send) a "not found" is followed by a read of
        the contract's ``FINISHED_ORDERS_PAGE`` newest finished orders, which keep the id. The
        order found there is the answer; ``None`` when it is not there and the page holds every
        finished order since the order was sent (a page that is not full, or one reaching back
        to a minute before the send); else it raises (cannot tell).
        """
        if not isinstance(client_order_id, str) or not client_order_id:
            raise TypeError(f"client_order_id must be a non-empty str, got {client_order_id!r}")
        with self._ids_lock:
            if client_order_id in self._refused_ids:
                return None
        if not self._has("fetchOrder"):
            raise NotImplementedError(f"{self!r}: the exchange cannot fetch orders")
        wire = self.venue_client_order_id(client_order_id)
        missing: Exception | None = None
        try:
            order = self._fetch_by_client_id(wire, symbol, client_order_id)
        except Exception as e:
            if not _is_ccxt_error(e, "OrderNotFound"):
                raise
            order, missing = None, e
        if isinstance(order, Mapping) and order.get("id") is None and not order.get("status"):
            # A successful answer without an order in it.
            if self.venue not in _EMPTY_ANSWER_IS_NOT_FOUND:
                raise LookupError(
                    f"the look-up of order {client_order_id} on {symbol} by its client order id "
                    f"answered no order and no error ccxt knows: cannot tell"
                )
            order = None
        if order is None:
            with self._ids_lock:
                sent = self._sent_ids.get(client_order_id)
            sent_at, sent_wall = sent if sent is not None else (None, None)
            window = _CLIENT_ID_WINDOWS.get(self.venue)
            if window is not None and (sent_at is None or self.clock() - sent_at >= window):
                order, page = self._finished_order(wire, symbol)
                if order is None and not _page_covers(page, sent_wall):
                    raise LookupError(
                        f"order {client_order_id} on {symbol} not found by its client order id, "
                        f"which {self.venue} finds only while the order is open and for "
                        f"{window:.0f} s after it ends, nor among the {len(page)} newest finished "
                        f"orders of {symbol}, which do not reach back to when it was sent: cannot "
                        f"tell ({missing or 'no order in the answer'})"
                    ) from missing
            if order is None:
                if sent_at is not None and self.clock() - sent_at < self.not_found_grace:
                    raise LookupError(
                        f"order {client_order_id} on {symbol} not found "
                        f"{self.clock() - sent_at:.1f} s after it was sent: the exchange may not "
                        f"know it yet ({missing or 'no order in the answer'})"
                    ) from missing
                return None
        if not isinstance(order, Mapping):
            raise TypeError(f"fetch_order() answered {type(order).__name__}, not an order")
        answer = dict(order)
        found = order_client_id(self.venue, answer)
        if found is None:
            # An order that names no client order id cannot be told from another one (every
            # venue of docs/ccxt-client.md names it in its answer): its "nothing filled"
            # would read as an order never placed.
            raise LookupError(
                f"the look-up of order {client_order_id} on {symbol} by its client order id "
                f"answered order {answer.get('id')!r}, which names no client order id: "
                "cannot tell"
            )
        if found not in (wire, client_order_id):
            raise ValueError(
                f"fetch_order() for client order id {client_order_id} answered order "
                f"{answer.get('id')} with client order id {found}"
            )
        other = other_order(answer, symbol)
        if other is not None:
            raise ValueError(
                f"fetch_order() for client order id {client_order_id} on {symbol} answered "
                f"order {answer.get('id')} of another market ({other}): cannot tell"
            )
        answer["clientOrderId"] = client_order_id
        return answer

    def wait_for_order_fill(
        self, order_id: str, symbol: str, timeout: int = 30, check_interval: int = 2
    ) -> dict[str, Any] | None:
        """Poll ``fetch_order`` until the order is done or ``timeout`` seconds have passed.

        Polls at once, then every ``check_interval`` seconds (through the injected ``sleep``)
        until the status is ``closed``, ``canceled``, ``expired`` or ``rejected``. The time
        waited is the sum of the pauses, bounded as well by ``clock``, so a slow exchange cannot
        stretch the wait. Returns the last status seen as ``{'id', 'status', 'filled',
        'remaining', 'amount', 'price', 'average', 'cost', 'timestamp'}`` (the status may still
        be ``'open'``), or ``None`` when every status fetch failed.
        """
        interval = max(float(check_interval), 0.01)
        started = self.clock()
        waited = 0.0
        last: dict[str, Any] | None = None
        while True:
            try:
                order = self._fetch_order(order_id, symbol)
            except Exception as e:
                self.logger.warning(
                    f"Could not fetch status of order {order_id} on {symbol}: {_said(e)}"
                )
            else:
                # (an answer without an id keeps being read as the order's, as before)
                other = (
                    other_order(order, symbol, None if order.get("id") is None else order_id)
                    if isinstance(order, Mapping)
                    else None
                )
                if other is not None:
                    self.logger.warning(
                        f"The status fetch of order {order_id} on {symbol} answered another "
                        f"order ({other}): not read"
                    )
                elif isinstance(order, Mapping):
                    last = {key: order.get(key) for key in _STATUS_KEYS}
                    if last["id"] is None:
                        last["id"] = order_id
                    if last["status"] in TERMINAL_ORDER_STATUSES:
                        return last
            remaining = float(timeout) - max(waited, self.clock() - started)
            if remaining <= 0:
                return last
            pause = min(interval, remaining)
            self.sleep(pause)
            waited += pause

    def cancel_order(self, order_id: str, symbol: str) -> bool:
        """Cancel an order: ``True`` when the exchange accepted the cancellation, else ``False``.

        A failure (order already filled or unknown, network error, ...) is logged and gives
        ``False``; so is an answer that does not confirm the cancel (``_cancel_problem``: no
        venue answer in it — ccxt reads an HTML page, an empty body, ``null`` or ``{}`` as a
        cancelled order —, another order, or the order still open). Check the order's status
        to learn what happened to it.
        """
        try:
            params = self._no_retries({})
            if params:
                answer = self.exchange.cancel_order(order_id, symbol, params)
            else:
                answer = self.exchange.cancel_order(order_id, symbol)
        except Exception as e:
            self.logger.warning(
                f"Could not cancel order {order_id} on {symbol}: {type(e).__name__}: {_said(e)}"
            )
            return False
        problem = self._cancel_problem(answer, order_id, symbol)
        if problem is not None:
            self.logger.warning(
                f"The cancel of order {order_id} on {symbol} is not confirmed: {problem}; "
                "the order may still rest"
            )
            return False
        return True

    def _cancel_problem(self, answer: Any, order_id: Any, symbol: str) -> str | None:
        """Why ccxt's answer to a cancel does not confirm it, else ``None``. ccxt makes an order
        of whatever the venue answered — an HTML page, an empty body, ``null``, ``{}`` (HTX
        fills the id and a ``canceled`` status in from the request alone) — so the venue's own
        answer (``info``) must be there: a non-empty object or list (Hyperliquid: its status
        ``success``); an order it names must be this one, and not open."""
        if not isinstance(answer, Mapping):
            return f"ccxt answered {type(answer).__name__}, not an order"
        info = answer.get("info")
        if self.venue == "hyperliquid":
            if info != "success":
                return f"the venue's answer is {answers.quoted(info, 80)}, not its 'success'"
        elif not (isinstance(info, (Mapping, list)) and info):
            return f"the venue's answer is {answers.quoted(info, 80)}, not a cancel"
        other = other_order(answer, symbol, None if answer.get("id") is None else order_id)
        if other is not None:
            return f"it names another order ({other})"
        status = answer.get("status")
        done = _ENDED_STATUSES
        if self.venue == "hyperliquid":
            done = done | {"success"}  # ccxt's status of Hyperliquid's cancel answer
        if status is not None and status not in done:
            return f"it says the order is {status!r}"
        return None
