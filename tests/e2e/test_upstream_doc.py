"""docs/upstream.md cannot rot: its example program runs against the session's stack, and every
REJECTED reason code the code can give is in its table."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from infra.settings import REPO_ROOT
from paycenter.supervisor import wait_for
from schemas.records import Outcome
from tests.support.stack import TopicReader

DOC = REPO_ROOT / "docs" / "upstream.md"
# where the order machine, validation, binding and the router give a REJECTED reason code
_SOURCES = [*sorted((REPO_ROOT / "processors").rglob("*.py")), REPO_ROOT / "streams" / "router.py"]
_CODE_SITES = [
    re.compile(r'\b(?:NoRoute|Rejection)\(\s*"([A-Z][A-Z_]+)"'),  # NoRoute("X", ...), Rejection(\n "X", ...)
    re.compile(r'\brefuse_unheld\(.*?"([A-Z][A-Z_]+)"'),  # on its call's line
    re.compile(r'^(?:NO_ROUTE|ORDER_ID_REUSED) = "([A-Z_]+)"', re.M),  # codes kept as module constants
]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.M | re.S)


def rejected_codes_in_source() -> set[str]:
    codes = set()
    for path in _SOURCES:
        text = path.read_text()
        for site in _CODE_SITES:
            codes.update(site.findall(text))
    return codes


def documented_rejected_codes() -> set[str]:
    section = DOC.read_text().split("### REJECTED reason codes", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.M))


def test_every_rejected_reason_code_is_in_the_table():
    found = rejected_codes_in_source()
    # the scan itself must see the codes given in each way (a regex that finds nothing proves nothing)
    assert {"INVALID_AMOUNT", "NO_ROUTE", "INVALID_CONFIRM", "CARD_NUMBER_IN_CLEAR", "STALE_COMMAND",
            "WRONG_PARTITION", "ORDER_ID_REUSED", "SIGN_ORDER_NOT_FOUND"} <= found, found
    documented = documented_rejected_codes()
    assert found - documented == set(), f"REJECTED codes missing from {DOC.name}'s table"
    assert documented - found == set(), f"{DOC.name} documents codes the code no longer gives"


def test_the_example_publishes_a_payment_and_matches_its_outcome(stack):
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) == 2, "the example is the page's two python blocks: publish, then consume"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PAYCENTER_KAFKA_BOOTSTRAP": stack.settings.kafka_bootstrap,
           "PAYCENTER_TOPIC_PREFIX": stack.settings.topic_prefix}
    env.pop("PAYCENTER_CARD_TOKEN_KEY", None)  # the documented dev key
    done = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and not lines[0].startswith("ALERT"), done.stdout
    m = re.fullmatch(r"(rep-[0-9a-f]{16}): (SUCCEEDED|FAILED|PARTIAL|REJECTED) (\d+) of 150000 fen, fee (\d+) fen.*",
                     lines[0])
    assert m, lines[0]
    # what it printed is the order's outcome on pay.outcomes
    reader = TopicReader(stack.settings, "pay.outcomes", 6, Outcome.decode)
    try:
        out = wait_for(lambda: next((o for _m, o in reader.poll() if o.order_id == m[1] and not o.duplicate), None),
                       60, "the example's outcome on pay.outcomes")
    finally:
        reader.close()
    assert (out.status.value, out.succeeded_amount_fen, out.fee_fen) == (m[2], int(m[3]), int(m[4]))
