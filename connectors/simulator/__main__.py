"""python -m connectors.simulator --channel alpha --port 18501 [--profile banks.yaml] [--zero-latency]

Fees come from the routing configuration (--routing-config, default PAYCENTER_ROUTING_CONFIG or
the demo's): the simulated channel charges what paycenter expects unless the profile sets a fee.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from connectors.signing import MissingSecretError, load_secret
from connectors.simulator.profiles import SimulatorConfig, declared_fees, load_profile_file
from connectors.simulator.runner import run_simulator
from infra.routing_config import load as load_routing
from infra.settings import load as load_settings

log = logging.getLogger("connectors.simulator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m connectors.simulator",
        description="Run a simulated payment channel (signed HTTP protocol, admin API on /admin).",
    )
    p.add_argument("--channel", required=True, help="channel id, e.g. alpha")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="TCP port (default 0 = ephemeral, printed when ready)")
    p.add_argument(
        "--secret-env",
        help="environment variable holding the HMAC secret (default PAYCENTER_SECRET_<CHANNEL>); "
        "with PAYCENTER_ALLOW_DEV_SECRETS=1 a missing variable means dev-secret-<channel>",
    )
    p.add_argument("--profile", help="YAML bank profiles: {seed, timezone, default: {...}, banks: {CODE: {...}}}")
    p.add_argument("--seed", type=int, help="override the profile file's seed")
    p.add_argument("--zero-latency", action="store_true", help="answer at once whatever the profiles say")
    p.add_argument("--routing-config", type=Path,
                   help="routing configuration whose fees this channel charges where the profile sets none "
                        "(default: PAYCENTER_ROUTING_CONFIG, else infra/routing.demo.yaml)")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> SimulatorConfig:
    env_var = args.secret_env or f"PAYCENTER_SECRET_{args.channel.upper()}"
    kwargs = load_profile_file(args.profile) if args.profile else {}
    if args.seed is not None:
        kwargs["seed"] = args.seed
    routing_path = args.routing_config or load_settings().routing_config
    try:
        declared = declared_fees(load_routing(routing_path), args.channel)
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise ValueError(f"routing configuration {routing_path} (the fees to charge) cannot be read: "
                         f"{str(exc).splitlines()[0]}; fix it or pass --routing-config") from None
    if not declared:
        log.warning("channel %s is not in %s: banks without a fee in the profile charge nothing",
                    args.channel, routing_path)
    config = SimulatorConfig(
        channel_id=args.channel, secret=load_secret(args.channel, env_var), host=args.host, port=args.port,
        declared_fees=declared, **kwargs
    )
    return config.zero_latency() if args.zero_latency else config


async def serve(config: SimulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_simulator(config) as sim:
        print(f"simulator {config.channel_id} listening on {sim.base_url}", flush=True)
        await stop.wait()
    print(f"simulator {config.channel_id} stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = build_config(args)
    except (MissingSecretError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
