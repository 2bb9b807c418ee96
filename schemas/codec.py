"""Avro framing for every topic: single-object encoding, read with schema resolution.

Wire form (Avro spec, "Single object encoding"): 0xC3 0x01, the 8-byte CRC-64-AVRO fingerprint of
the writer schema's canonical form, then the Avro binary body. A reader keeps every version of a
schema that was ever published (schemas/avro/history/<name>/vN.avsc plus the current file) and
resolves the writer's version to its own, so producers and consumers can be upgraded in any order
as long as each new version stays backward compatible (tests/schemas checks it).
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

AVRO_DIR = Path(__file__).resolve().parent / "avro"
MAGIC = b"\xc3\x01"
HEADER_LEN = 10


class DecodeError(ValueError):
    """The bytes are not a record this codec can read; the message says why."""


def schema_names() -> list[str]:
    return sorted(p.stem for p in AVRO_DIR.glob("*.avsc"))


def load_schema(path: Path) -> dict:
    return cast(dict, fastavro.parse_schema(json.loads(path.read_text())))  # a record schema parses to a dict


def schema_fingerprint(parsed: dict) -> bytes:
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def history_paths(name: str) -> list[Path]:
    """Earlier published versions, oldest first."""
    folder = AVRO_DIR / "history" / name
    return sorted(folder.glob("v*.avsc"), key=lambda p: int(p.stem[1:])) if folder.is_dir() else []


@dataclass
class AvroCodec:
    name: str

    def __post_init__(self) -> None:
        self.schema = load_schema(AVRO_DIR / f"{self.name}.avsc")
        self.fingerprint = schema_fingerprint(self.schema)
        self._header = MAGIC + self.fingerprint
        self._writers: dict[bytes, dict] = {self.fingerprint: self.schema}
        for path in history_paths(self.name):
            old = load_schema(path)
            self._writers.setdefault(schema_fingerprint(old), old)

    @property
    def record(self) -> str:
        return record_name(self.schema)

    def _unknown_writer(self, fp: bytes) -> str:
        other = known_writers().get(fp)
        if other is not None:
            name, path = other
            return (f"{self.name}: the record is of type {name} ({path}), not {self.record}: it was published to "
                    f"the wrong topic. Publish it to the topic that carries {name} records; this one takes "
                    f"{self.record} records (schemas/avro/{self.name}.avsc)")
        return (f"{self.name}: unknown writer schema fingerprint {fp.hex()}: no published version of any paycenter "
                f"schema has it. If it is a newer {self.record} version, publish it in "
                f"schemas/avro/history/{self.name}/ before producing with it; otherwise the producer encodes a "
                f"record that is not a {self.record}")

    def encode(self, record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(self._header)
        fastavro.schemaless_writer(buf, self.schema, record)
        return buf.getvalue()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        if not data:
            raise DecodeError(f"{self.name}: empty payload; publish an Avro single-object encoded {self.name}")
        if data[:2] != MAGIC or len(data) < HEADER_LEN:
            raise DecodeError(
                f"{self.name}: not Avro single-object encoding (expected header C3 01 + 8-byte fingerprint); "
                "encode with schemas.codec.AvroCodec or any Avro library's single-object encoder"
            )
        writer = self._writers.get(data[2:HEADER_LEN])
        if writer is None:
            raise DecodeError(self._unknown_writer(data[2:HEADER_LEN]))
        try:
            # a record schema reads to a dict
            return cast(dict, fastavro.schemaless_reader(io.BytesIO(data[HEADER_LEN:]), writer, self.schema))
        except Exception as exc:  # fastavro raises several types on corrupt bodies
            raise DecodeError(f"{self.name}: corrupt Avro body ({type(exc).__name__}: {exc})") from exc


def record_name(parsed: dict) -> str:
    return str(parsed["name"]).rsplit(".", 1)[-1]


@lru_cache(maxsize=None)
def known_writers() -> dict[bytes, tuple[str, str]]:
    """Every published schema version by fingerprint: (record name, file), to tell a record of
    another type (sent to the wrong topic) from a version that is not published yet."""
    out: dict[bytes, tuple[str, str]] = {}
    for name in schema_names():
        for path in [AVRO_DIR / f"{name}.avsc", *history_paths(name)]:  # the current file named first
            parsed = load_schema(path)
            out.setdefault(schema_fingerprint(parsed), (record_name(parsed), str(path.relative_to(AVRO_DIR.parent.parent))))
    return out


@lru_cache(maxsize=None)
def codec(name: str) -> AvroCodec:
    return AvroCodec(name)
