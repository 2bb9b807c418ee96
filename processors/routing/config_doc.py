"""Routing configuration documents as they travel on the compacted `pay.config` topic.

A document is the YAML text of a routing configuration (the same format as infra/routing.demo.yaml),
keyed "routing". It is validated as a whole before it is published (`paycenter config apply`) and
again by every router that reads it: an invalid document is rejected with every error listed, and
the configuration in force stays. Pure: no Kafka here (streams/views/config.py reads the topic).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import yaml
from pydantic import ValidationError

from processors.routing.config import RoutingConfig, parse

ROUTING_KEY = b"routing"  # the message key of routing documents on pay.config
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024  # far above any real routing table; a bigger one is a mistake


class ConfigRejected(ValueError):
    """The document is not a valid routing configuration; str() lists every problem."""


@dataclass(frozen=True)
class ConfigDoc:
    config: RoutingConfig
    digest: str  # of the parsed configuration: formatting and comments do not change it
    source: str  # "pay.config@<offset>" or "file:<path>"
    text: str = ""


def digest(config: RoutingConfig) -> str:
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_document(text: str | bytes, source: str) -> ConfigDoc:
    """YAML text -> ConfigDoc, or ConfigRejected saying everything that is wrong."""
    if isinstance(text, bytes):
        if len(text) > MAX_DOCUMENT_BYTES:
            raise ConfigRejected(f"{source}: document of {len(text)} bytes is over {MAX_DOCUMENT_BYTES}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigRejected(f"{source}: not UTF-8 text ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigRejected(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigRejected(f"{source}: expected a mapping with business_lines and channels at the top level")
    try:
        config = parse(data)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise ConfigRejected(f"{source}: {len(lines)} error(s):\n" + "\n".join(lines)) from None
    except ValueError as exc:  # e.g. an unknown time zone raised outside pydantic's own checks
        raise ConfigRejected(f"{source}: {exc}") from None
    problems = check(config)
    if problems:
        raise ConfigRejected(f"{source}: {len(problems)} error(s):\n" + "\n".join(f"  {p}" for p in problems))
    return ConfigDoc(config, digest(config), source, text)


def check(config: RoutingConfig) -> list[str]:
    """Rules the typed model cannot express on its own."""
    problems = []
    if not config.channels:
        problems.append("channels: at least one channel is needed")
    if not config.business_lines:
        problems.append("business_lines: at least one business line is needed")
    for cid, ch in config.channels.items():
        if not ch.banks:
            problems.append(f"channels.{cid}.banks: a channel must reach at least one bank")
        if not ch.operations:
            problems.append(f"channels.{cid}.operations: a channel must support at least one operation")
        for code, cb in ch.banks.items():
            for name, fee in (("fee", cb.fee), ("payout_fee", cb.payout_fee)):
                if fee is not None and fee.max_fen is not None and fee.min_fen > fee.max_fen:
                    problems.append(f"channels.{cid}.banks.{code}.{name}: min_fen {fee.min_fen} > max_fen {fee.max_fen}")
        for i, w in enumerate(ch.maintenance):
            unknown = sorted(set(w.banks) - set(ch.banks))
            if unknown:
                problems.append(f"channels.{cid}.maintenance[{i}].banks: {unknown} not among the channel's banks")
    return problems
