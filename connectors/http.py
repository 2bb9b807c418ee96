"""`HttpChannel`: the Channel interface over the signed HTTP protocol (see connectors/simulator).

How failures map, from the payments side (the question is always "could money have moved?"):

* could not connect (ClientConnectorError, connect timeout): nothing was sent, so nothing moved
  -> FAILED/CHANNEL "CONNECT"; another channel may be tried.
* timeout or connection drop after the request was sent: the channel may have booked it
  -> PENDING "TIMEOUT" / "NETWORK"; resolved by `query_status`.
* HTTP 5xx without a valid signed body (a proxy page, a crash) -> PENDING "HTTP_<status>".
* a response whose signature does not verify -> PENDING "BAD_SIGNATURE" and an error log: an
  unauthenticated "failed" must never let us retry elsewhere and charge twice.
* anything else unreadable -> PENDING "BAD_RESPONSE".

For `query_status` every local failure is PENDING: failing to *ask* says nothing about the attempt.
"""
from __future__ import annotations

import datetime
import json
import logging
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from connectors import signing
from connectors.base import (
    Channel,
    ChannelError,
    ChannelRequest,
    ChannelResponse,
    SigningConfirmation,
    SigningRequest,
)
from schemas import codes
from schemas.records import AttemptStatus, FailureKind, Operation
from schemas.statement import StatementLine

log = logging.getLogger(__name__)

TIMEOUT, NETWORK, CONNECT = codes.TIMEOUT, codes.NETWORK, codes.CONNECT
BAD_SIGNATURE, BAD_RESPONSE = "BAD_SIGNATURE", "BAD_RESPONSE"


class _Untrusted(Exception):
    """The response cannot be relied on; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class HttpChannel(Channel):
    def __init__(
        self,
        channel_id: str,
        base_url: str,
        secret: str,
        timeout_ms: int,
        *,
        limit: int = 200,
        max_skew_ms: int = signing.MAX_SKEW_MS,
    ) -> None:
        self.channel_id = channel_id
        self.base_url = URL(base_url)
        self.timeout_ms = timeout_ms
        self._secret = secret
        self._limit = limit
        self._max_skew_ms = max_skew_ms
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"HttpChannel({self.channel_id!r}, {str(self.base_url)!r}, timeout_ms={self.timeout_ms})"

    # ---- Channel -----------------------------------------------------------------------------
    async def debit(self, req: ChannelRequest) -> ChannelResponse:
        return await self._move("/v1/debit", req)

    async def payout(self, req: ChannelRequest) -> ChannelResponse:
        return await self._move("/v1/payout", req)

    async def authenticate(self, req: ChannelRequest) -> ChannelResponse:
        return await self._move("/v1/authenticate", req)

    async def request_signing(self, req: SigningRequest) -> ChannelResponse:
        payload = {"attempt_id": req.attempt_id, "order_id": req.order_id, "card_token": req.card_token,
                   "bank_code": req.bank_code, "card_type": req.card_type.value, "auth_elements": req.auth_elements}
        if req.elements is not None:
            payload["elements"] = req.elements
        if req.resend_ref is not None:
            payload["resend_ref"] = req.resend_ref
        return await self._post("/v1/agreements/sign", req.attempt_id, payload)

    async def confirm_signing(self, req: SigningConfirmation) -> ChannelResponse:
        return await self._post("/v1/agreements/confirm", req.attempt_id, {
            "attempt_id": req.attempt_id, "order_id": req.order_id, "card_token": req.card_token,
            "sign_ref": req.sign_ref, "sms_code": req.sms_code})

    async def query_status(self, attempt_id: str) -> ChannelResponse:
        try:
            body = await self._call("GET", f"/v1/payments/{quote(attempt_id, safe='')}", b"")
        except _Untrusted as exc:
            return ChannelResponse.pending(exc.code, f"status unknown: {exc}")
        return self._to_response(body, attempt_id)

    async def fetch_statement(self, day: datetime.date) -> list[StatementLine]:
        try:
            body = await self._call("GET", f"/v1/statements/{day.isoformat()}", b"")
        except _Untrusted as exc:
            raise ChannelError(f"{self.channel_id}: statement {day}: {exc.code}: {exc}") from None
        if body.get("code") != codes.SUCCESS or not isinstance(body.get("lines"), list):
            raise ChannelError(f"{self.channel_id}: statement {day}: {body.get('code')} {body.get('message', '')}")
        try:
            return [_statement_line(line) for line in body["lines"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ChannelError(f"{self.channel_id}: statement {day}: malformed line: {exc}") from None

    def parse_notification(self, headers: Any, path: str, body: bytes) -> tuple[str, str, ChannelResponse]:
        """A notification the channel POSTed to our callback URL when a pending attempt became
        final: verified like a response (this channel's secret, method POST, the path as received,
        the raw body, timestamp skew) and read as (attempt_id, card_token, response). Raises
        signing.SignatureError if it is not authentic, ValueError if it is malformed."""
        signing.verify(self._secret, headers, "POST", path, body,
                       expected_channel=self.channel_id, max_skew_ms=self._max_skew_ms)
        try:
            data = json.loads(body)
        except ValueError:
            raise ValueError("notification body is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("attempt_id"), str) \
                or not isinstance(data.get("card_token"), str):
            raise ValueError("notification must be a JSON object with attempt_id and card_token")
        return data["attempt_id"], data["card_token"], self._to_response(data, data["attempt_id"])

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> HttpChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- money movements ---------------------------------------------------------------------
    async def _move(self, path: str, req: ChannelRequest) -> ChannelResponse:
        payload = {
            "attempt_id": req.attempt_id,
            "order_id": req.order_id,
            "card_token": req.card_token,
            "bank_code": req.bank_code,
            "card_type": req.card_type.value,
            "amount_fen": req.amount_fen,
        }
        if req.sign_on_the_way:
            payload["sign_on_the_way"] = True
        if req.auth_elements:
            payload["auth_elements"] = req.auth_elements
        if req.elements is not None:
            payload["elements"] = req.elements
        return await self._post(path, req.attempt_id, payload)

    async def _post(self, path: str, attempt_id: str, payload: dict[str, Any]) -> ChannelResponse:
        try:
            body = await self._call("POST", path, json.dumps(payload, separators=(",", ":")).encode())
        except _Untrusted as exc:
            if exc.code == CONNECT:
                return ChannelResponse(AttemptStatus.FAILED, FailureKind.CHANNEL, CONNECT, str(exc))
            return ChannelResponse.pending(exc.code, f"outcome unknown: {exc}")
        return self._to_response(body, attempt_id)

    def _to_response(self, body: dict[str, Any], attempt_id: str) -> ChannelResponse:
        code, fee, txn = body.get("code"), body.get("fee_fen", 0), body.get("txn_id")
        if not isinstance(code, str) or type(fee) is not int or fee < 0 or not isinstance(txn, str | None):
            log.error("%s: malformed answer for %s: %r", self.channel_id, attempt_id, body)
            return ChannelResponse.pending(BAD_RESPONSE, "malformed answer from the channel")
        meaning = codes.classify(code)
        if body.get("status") != meaning.status.value:
            # The channel contradicts itself; trust neither half.
            log.error("%s: %s: code %s but status %r", self.channel_id, attempt_id, code, body.get("status"))
            return ChannelResponse.pending(BAD_RESPONSE, f"code {code} contradicts status {body.get('status')!r}")
        message = body.get("message") if isinstance(body.get("message"), str) else meaning.description
        success = meaning.status is AttemptStatus.SUCCESS
        return ChannelResponse(meaning.status, meaning.failure_kind, code, message, txn, fee if success else 0)

    # ---- transport ---------------------------------------------------------------------------
    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Created lazily, inside the running loop. One pool per channel: `limit` bounds the
            # concurrent connections to this channel.
            timeout = aiohttp.ClientTimeout(total=self.timeout_ms / 1000, sock_connect=self.timeout_ms / 1000)
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self._limit), timeout=timeout)
        elif self._session.closed:
            raise RuntimeError(f"{self!r} is closed")
        return self._session

    async def _call(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        """Signed request -> verified JSON object, or _Untrusted saying why not."""
        full_path = self.base_url.path.rstrip("/") + path
        url = self.base_url.with_path(full_path, encoded=True)
        headers = signing.sign_headers(self.channel_id, self._secret, method, full_path, body)
        headers["Content-Type"] = "application/json"
        try:
            async with self._http().request(method, url, data=body or None, headers=headers) as resp:
                raw = await resp.read()
                status, resp_headers = resp.status, resp.headers
        # Order matters: ConnectionTimeoutError is also a TimeoutError, ClientConnectorError a ClientError.
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as exc:
            raise _Untrusted(CONNECT, f"could not connect to {self.channel_id}: {exc}") from None
        except TimeoutError:
            raise _Untrusted(TIMEOUT, f"no answer from {self.channel_id} within {self.timeout_ms} ms") from None
        except aiohttp.ClientError as exc:
            raise _Untrusted(NETWORK, f"connection to {self.channel_id} failed mid-request: {exc!r}") from None
        return self._verified(method, full_path, status, resp_headers, raw)

    def _verified(self, method: str, path: str, status: int, headers: Any, raw: bytes) -> dict[str, Any]:
        try:
            signing.verify(self._secret, headers, method, path, raw,
                           expected_channel=self.channel_id, max_skew_ms=self._max_skew_ms)
        except signing.SignatureError as exc:
            if status >= 500:
                log.warning("%s: HTTP %d without a signed body on %s %s", self.channel_id, status, method, path)
                raise _Untrusted(f"HTTP_{status}", f"HTTP {status} without a valid body") from None
            log.error("%s: response signature invalid on %s %s (HTTP %d): %s",
                      self.channel_id, method, path, status, exc)
            raise _Untrusted(BAD_SIGNATURE, f"response signature invalid: {exc}") from None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            log.error("%s: signed but unreadable body on %s %s (HTTP %d)", self.channel_id, method, path, status)
            raise _Untrusted(BAD_RESPONSE, f"unreadable body (HTTP {status})")
        return body


def _statement_line(line: dict[str, Any]) -> StatementLine:
    for key in ("amount_fen", "fee_fen", "booked_at_ms"):
        if type(line[key]) is not int:
            raise ValueError(f"{key} must be an integer, got {line[key]!r}")
    if type(line["credited"]) is not bool:
        raise ValueError(f"credited must be a boolean, got {line['credited']!r}")
    return StatementLine(
        attempt_id=str(line["attempt_id"]),
        channel_txn_id=line.get("txn_id"),
        operation=Operation(line["operation"]),
        bank_code=str(line["bank_code"]),
        amount_fen=line["amount_fen"],
        fee_fen=line["fee_fen"],
        status=AttemptStatus(line["status"]),
        credited=line["credited"],
        booked_at_ms=line["booked_at_ms"],
    )
