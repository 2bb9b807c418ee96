"""`paycenter config validate|show|apply`: the routing configuration as data on `pay.config`.

    paycenter config validate [FILE]      check a file (default PAYCENTER_ROUTING_CONFIG)
    paycenter config show [FILE]          the configuration routers use now (newest valid on pay.config,
                                          else the PAYCENTER_ROUTING_CONFIG file); with FILE, that file
    paycenter config apply FILE           validate, then publish to pay.config: every router reloads it
"""
from __future__ import annotations

import getpass
import json
import socket
import sys
from pathlib import Path

import yaml

from infra import kafka
from infra.settings import load as load_settings
from processors.routing.config_doc import ROUTING_KEY, ConfigDoc, ConfigRejected, parse_document


def _read(path: str | Path) -> ConfigDoc:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigRejected(f"{path}: cannot read: {exc.strerror}") from None
    return parse_document(text, f"file:{path}")


def _print(doc: ConfigDoc, fmt: str, extra: dict | None = None) -> None:
    data = doc.config.model_dump(mode="json")
    if fmt == "json":
        print(json.dumps({"source": doc.source, "digest": doc.digest, **(extra or {}), "config": data}, indent=2))
        return
    print(f"# source: {doc.source}\n# digest: {doc.digest}")
    for k, v in (extra or {}).items():
        print(f"# {k}: {v}")
    print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")


def cmd_validate(args) -> int:
    doc = _read(args.file or load_settings().routing_config)
    print(f"{doc.source[5:]}: valid ({len(doc.config.channels)} channels, "
          f"{len(doc.config.business_lines)} business lines), digest {doc.digest}")
    return 0


def cmd_show(args) -> int:
    if args.file:
        _print(_read(args.file), args.format)
        return 0
    from streams.views.config import ConfigView

    settings = load_settings()
    view = ConfigView(settings, fallback=_read(settings.routing_config))
    try:
        doc = view.load_initial(timeout_s=args.timeout)
    finally:
        view.stop()
    extra = {"rejected": len(view.rejected)}
    if view.rejected:
        extra["last_rejected"] = view.rejected[-1]["source"]
    _print(doc, args.format, extra)
    return 0


def cmd_apply(args) -> int:
    from confluent_kafka import KafkaException

    doc = _read(args.file)
    settings = load_settings()
    topic = settings.topic("pay.config")
    delivered: list = []
    producer = kafka.producer(settings, message_timeout_ms=int(args.timeout * 1000))
    headers = [("digest", doc.digest.encode()), ("applied-by", f"{getpass.getuser()}@{socket.gethostname()}".encode()),
               ("file", str(args.file).encode())]
    try:
        producer.produce(topic, key=ROUTING_KEY, value=doc.text.encode(), headers=headers,
                         on_delivery=lambda err, msg: delivered.append((err, msg)))
        producer.flush(args.timeout)
    except KafkaException as exc:
        print(f"error: could not publish to {topic}: {exc}", file=sys.stderr)
        return 1
    if not delivered or delivered[0][0] is not None:
        err = delivered[0][0] if delivered else "no delivery report"
        print(f"error: {topic} did not accept the configuration ({err}); is the broker up "
              f"(`paycenter infra status`)?", file=sys.stderr)
        return 1
    print(f"applied {args.file}: digest {doc.digest} at {topic}@{delivered[0][1].offset()} "
          f"({len(doc.config.channels)} channels); routers reload it within a second")
    return 0


def _run(func):
    def wrapped(args) -> int:
        try:
            return func(args)
        except ConfigRejected as exc:
            print(f"invalid routing configuration {exc}\nnothing was applied; fix the file and try again",
                  file=sys.stderr)
            return 1
    return wrapped


def register(sub) -> None:
    c = sub.add_parser("config", help="validate, show or apply the routing configuration (pay.config)",
                       description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    actions = c.add_subparsers(dest="action", required=True)
    v = actions.add_parser("validate", help="check a routing configuration file")
    v.add_argument("file", nargs="?", help="YAML file (default: PAYCENTER_ROUTING_CONFIG)")
    v.set_defaults(func=_run(cmd_validate))
    s = actions.add_parser("show", help="print the configuration in force (or a file's)")
    s.add_argument("file", nargs="?", help="show this file instead of what routers use")
    s.add_argument("--format", choices=("yaml", "json"), default="yaml")
    s.add_argument("--timeout", type=float, default=15.0, help="seconds to read pay.config (default 15)")
    s.set_defaults(func=_run(cmd_show))
    a = actions.add_parser("apply", help="validate a file and publish it to pay.config (routers hot-reload it)")
    a.add_argument("file", help="YAML routing configuration")
    a.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the broker (default 15)")
    a.set_defaults(func=_run(cmd_apply))
