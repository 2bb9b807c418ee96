"""Transport failures and authenticity: real sockets, real (sometimes misbehaving) servers."""
from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from connectors import signing
from connectors.http import HttpChannel
from schemas.records import AttemptStatus, FailureKind

PENDING, FAILED = AttemptStatus.PENDING, AttemptStatus.FAILED
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """A one-route server answering every path with `handler` (a misbehaving channel)."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def signed_reply(body: bytes, request: web.Request, secret: str = "test-secret-alpha") -> web.Response:
    headers = signing.sign_headers("alpha", secret, request.method, request.raw_path, body)
    return web.Response(body=body, headers=headers, content_type="application/json")


SUCCESS_BODY = b'{"code":"0000","message":"ok","status":"SUCCESS","txn_id":"t1","fee_fen":1}'


async def test_bad_request_signature_gets_401_e401(make_sim) -> None:
    sim, _ = await make_sim()
    body = b'{"attempt_id":"b.1"}'
    headers = signing.sign_headers("alpha", "wrong-secret", "POST", "/v1/debit", body)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim.base_url}/v1/debit", data=body, headers=headers) as resp:
            assert resp.status == 401
            assert (await resp.json())["code"] == "E401"
        async with http.get(f"{sim.base_url}/v1/statements/2026-01-01") as resp:  # unsigned
            assert resp.status == 401
    assert sim.stats["signature_failures"] == 2 and sim.ledger == []


async def test_connector_with_wrong_secret_books_nothing_and_stays_pending(make_sim, req, caplog) -> None:
    sim, ch = await make_sim(client_secret="not-the-secret")
    with caplog.at_level(logging.ERROR, logger="connectors.http"):
        resp = await ch.debit(req("w.1"))
    # the 401 comes back signed with the channel's secret, which we cannot verify: not trusted
    assert (resp.status, resp.channel_code) == (PENDING, "BAD_SIGNATURE")
    assert sim.ledger == [] and sim.stats["signature_failures"] == 1
    assert any("signature invalid" in r.getMessage() for r in caplog.records)


async def test_forged_success_is_not_trusted(req, caplog) -> None:
    async def forged(request: web.Request) -> web.Response:
        return signed_reply(SUCCESS_BODY, request, secret="attacker")

    async with serve(forged) as url, HttpChannel("alpha", url, "test-secret-alpha", 1000) as ch:
        with caplog.at_level(logging.ERROR, logger="connectors.http"):
            resp = await ch.debit(req("f.1"))
    assert (resp.status, resp.channel_code) == (PENDING, "BAD_SIGNATURE")
    assert caplog.records


async def test_response_signed_for_another_request_is_rejected(req) -> None:
    async def replayed(request: web.Request) -> web.Response:
        headers = signing.sign_headers("alpha", "test-secret-alpha", "GET", "/v1/payments/other.1", SUCCESS_BODY)
        return web.Response(body=SUCCESS_BODY, headers=headers, content_type="application/json")

    async with serve(replayed) as url, HttpChannel("alpha", url, "test-secret-alpha", 1000) as ch:
        assert (await ch.query_status("f.1")).channel_code == "BAD_SIGNATURE"


async def test_properly_signed_reply_from_a_plain_server_is_accepted(req) -> None:
    # guards the two tests above: the only thing they change is the signature
    async def honest(request: web.Request) -> web.Response:
        return signed_reply(SUCCESS_BODY, request)

    async with serve(honest) as url, HttpChannel("alpha", url, "test-secret-alpha", 1000) as ch:
        resp = await ch.debit(req("f.1"))
    assert (resp.status, resp.channel_code, resp.fee_fen) == (AttemptStatus.SUCCESS, "0000", 1)


async def test_5xx_without_body_is_pending(req) -> None:
    async def gateway_error(request: web.Request) -> web.Response:
        return web.Response(status=502, text="Bad Gateway")

    async with serve(gateway_error) as url, HttpChannel("alpha", url, "test-secret-alpha", 1000) as ch:
        resp = await ch.debit(req("g.1"))
    assert (resp.status, resp.failure_kind, resp.channel_code) == (PENDING, FailureKind.NONE, "HTTP_502")


async def test_signed_but_inconsistent_or_malformed_answers_are_pending(req) -> None:
    bodies = [
        b'{"code":"0000","message":"ok","status":"FAILED","txn_id":"t","fee_fen":0}',
        b'{"code":"0000","message":"ok","status":"SUCCESS","txn_id":"t","fee_fen":1.5}',
        b'{"code":"E777","message":"?","status":"FAILED","txn_id":null,"fee_fen":0}',
        b'not json',
    ]
    for body in bodies:
        async def reply(request: web.Request, body: bytes = body) -> web.Response:
            return signed_reply(body, request)

        async with serve(reply) as url, HttpChannel("alpha", url, "test-secret-alpha", 1000) as ch:
            resp = await ch.debit(req("m.1"))
        assert resp.status is PENDING, body


async def test_connection_dropped_after_send_is_pending_network(req) -> None:
    async def drop(request: web.Request) -> web.Response:
        await request.read()  # the request arrived in full: the channel could have acted on it
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    async with serve(drop) as url, HttpChannel("alpha", url, "test-secret-alpha", 1000) as ch:
        resp = await ch.debit(req("n.1"))
    assert (resp.status, resp.failure_kind, resp.channel_code) == (PENDING, FailureKind.NONE, "NETWORK")


async def test_connect_refused_is_failed_channel_for_money_but_pending_for_query(req) -> None:
    async with HttpChannel("alpha", f"http://127.0.0.1:{free_port()}", "s", 1000) as ch:
        resp = await ch.debit(req("c.1"))
        assert (resp.status, resp.failure_kind, resp.channel_code) == (FAILED, FailureKind.CHANNEL, "CONNECT")
        # failing to ask says nothing about the attempt
        assert (await ch.query_status("c.1")).status is PENDING
