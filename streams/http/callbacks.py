"""The HTTP endpoint channels POST their asynchronous notifications to.

    POST /callbacks/{channel_id}    body and X-PC-* headers as the channel signs them

A notification is accepted only if it verifies with that channel's secret
(`HttpChannel.parse_notification`: HMAC over method, path, body, timestamp within the skew).
Answers: 200 {"code": "0000"} once the notification is durably handed on (the channel may stop
retrying); 401 bad signature; 404 unknown channel; 400 malformed; 503 if it could not be handed on
(the channel retries later). What happens next is the pending resolver's business (streams/pending.py):
the notification is applied only if the attempt is still waiting, so a repeated or late
notification is harmless.
"""
from __future__ import annotations

import logging
from typing import Awaitable, Callable, Mapping

from aiohttp import web

from connectors import signing
from connectors.base import ChannelResponse
from connectors.http import HttpChannel

log = logging.getLogger("paycenter.callbacks")

Deliver = Callable[[str, str, str, ChannelResponse], Awaitable[None]]  # channel_id, attempt_id, card_token, response
HOST_ENV, PORT_ENV = "PAYCENTER_CALLBACK_HOST", "PAYCENTER_CALLBACK_PORT"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 18610  # 18600 is the router's capability endpoint


class CallbackEndpoint:
    def __init__(self, channels: Mapping[str, HttpChannel], deliver: Deliver):
        self.channels = channels
        self.deliver = deliver
        self.accepted = 0
        self.rejected = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)  # a notification is small; refuse floods
        app.router.add_post("/callbacks/{channel_id}", self.handle)
        return app

    @staticmethod
    def _reply(status: int, code: str, message: str) -> web.Response:
        return web.json_response({"code": code, "message": message}, status=status)

    async def handle(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        channel = self.channels.get(channel_id)
        if channel is None:
            self.rejected += 1
            return self._reply(404, "E404", f"unknown channel {channel_id!r}")
        body = await request.read()
        path = request.raw_path.split("?", 1)[0]
        try:
            attempt_id, card_token, response = channel.parse_notification(request.headers, path, body)
        except signing.SignatureError as exc:
            self.rejected += 1
            log.warning("%s: notification rejected: %s", channel_id, exc)
            return self._reply(401, "E401", f"signature invalid: {exc}")
        except ValueError as exc:
            self.rejected += 1
            return self._reply(400, "E400", str(exc))
        try:
            await self.deliver(channel_id, attempt_id, card_token, response)
        except Exception as exc:  # broker trouble: the channel retries the notification later
            log.exception("%s: notification for %s could not be handed on", channel_id, attempt_id)
            return self._reply(503, "E503", f"try again later ({type(exc).__name__})")
        self.accepted += 1
        return self._reply(200, "0000", "received")


async def serve(endpoint: CallbackEndpoint, host: str, port: int) -> web.AppRunner:
    """Start serving; the caller keeps the runner and calls `await runner.cleanup()` to stop."""
    runner = web.AppRunner(endpoint.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("channel callbacks on http://%s:%d/callbacks/{channel_id}", host, port)
    return runner


__all__ = ["CallbackEndpoint", "DEFAULT_HOST", "DEFAULT_PORT", "HOST_ENV", "PORT_ENV", "serve"]
