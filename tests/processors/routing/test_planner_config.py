"""Routing configuration documents (what pay.config carries): validation with every error listed,
a digest that ignores formatting, and the CLI that validates before it publishes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.settings import REPO_ROOT
from processors.routing.config_doc import ConfigRejected, parse_document

DEMO = (REPO_ROOT / "infra" / "routing.demo.yaml").read_text()


def test_demo_config_is_valid_and_its_digest_ignores_comments_and_layout():
    doc = parse_document(DEMO, "file:demo")
    again = parse_document(yaml.safe_dump(yaml.safe_load(DEMO), sort_keys=True), "x")
    assert doc.digest == again.digest and len(doc.digest) == 16 and doc.text == DEMO
    changed = yaml.safe_load(DEMO)
    changed["channels"]["alpha"]["banks"]["ICBC"]["daily_limit_fen"] += 1  # one fen more changes it
    assert parse_document(yaml.safe_dump(changed), "y").digest != doc.digest


@pytest.mark.parametrize("text,expected", [
    ("- a list", "expected a mapping"),
    ("channels: [", "not valid YAML"),
    (b"\xff\xfe", "not UTF-8"),
    ("business_lines: {}\nchannels: {}\n", "at least one channel"),
    ("business_lines: {x: {max_attempts: 0}}\nchannels: {}\n", "business_lines.x.max_attempts"),
])
def test_invalid_documents_are_rejected_saying_what_is_wrong(text, expected):
    with pytest.raises(ConfigRejected) as exc:
        parse_document(text, "pay.config@7")
    assert expected in str(exc.value) and "pay.config@7" in str(exc.value)


def test_cross_field_rules_are_checked():
    data = yaml.safe_load(DEMO)
    data["channels"]["alpha"]["banks"]["ICBC"]["fee"].update(min_fen=10, max_fen=9)
    data["channels"]["beta"]["maintenance"] = [{"daily_start": "01:00", "daily_end": "02:00", "banks": ["XYZ"]}]
    data["channels"]["gamma"]["banks"] = {}
    with pytest.raises(ConfigRejected) as exc:
        parse_document(yaml.safe_dump(data), "f")
    text = str(exc.value)
    assert "3 error(s)" in text and "min_fen 10 > max_fen 9" in text and "['XYZ']" in text
    assert "gamma.banks" in text


def test_negative_limit_and_unknown_field_are_listed_together():
    data = yaml.safe_load(DEMO)
    data["channels"]["alpha"]["banks"]["ICBC"]["per_payment_limit_fen"] = -1
    data["channels"]["beta"]["colour"] = "red"
    with pytest.raises(ConfigRejected) as exc:
        parse_document(yaml.safe_dump(data), "f")
    assert "2 error(s)" in str(exc.value) and "colour" in str(exc.value)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "paycenter.cli", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)


def test_cli_validate_and_show_a_file_and_refuse_to_apply_an_invalid_one(tmp_path: Path):
    ok = run_cli("config", "validate", str(REPO_ROOT / "infra" / "routing.demo.yaml"))
    assert ok.returncode == 0 and "valid (3 channels" in ok.stdout
    shown = run_cli("config", "show", str(REPO_ROOT / "infra" / "routing.demo.yaml"), "--format", "json")
    assert shown.returncode == 0 and '"digest"' in shown.stdout and '"alpha"' in shown.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels: 3\n")
    refused = run_cli("config", "apply", str(bad))  # refused before any broker is contacted
    assert refused.returncode == 1 and "business_lines" in refused.stderr and "nothing was applied" in refused.stderr
