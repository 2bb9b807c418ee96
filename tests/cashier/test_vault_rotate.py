"""`paycenter vault rotate` on the real broker: every record re-wrapped under the new key, none
lost, including a card re-written while the rotation runs."""
from __future__ import annotations

import base64
import dataclasses
import os
import subprocess
import sys
import uuid

import pytest

from infra import topics
from infra.settings import REPO_ROOT, Settings
from processors.pan import tokenize
from processors.vault import envelope
from processors.vault.elements import CardElements
from processors.vault.keys import MasterKeys
from streams.views.vault import VaultStore

K1, K2, K3 = os.urandom(32), os.urandom(32), os.urandom(32)


def card(i: int) -> CardElements:
    return CardElements(f"62220202{i:010d}", f"持卡人{i}", "11010519491231002X", f"138{i:08d}")


def keys_env(*pairs: tuple[str, bytes], current: str) -> dict[str, str]:
    return {"PAYCENTER_VAULT_KEYS": ",".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in pairs),
            "PAYCENTER_VAULT_KEY_ID": current}


@pytest.fixture(scope="module")
def settings(services: Settings) -> Settings:
    """A vault of this module's own: other tests' records under other keys are not ours to rotate."""
    own = dataclasses.replace(services, topic_prefix=f"vr{uuid.uuid4().hex[:6]}.")
    topics.provision(own)
    return own


def test_rotate_rewraps_every_record_with_progress_and_loses_nothing(settings: Settings):
    old = VaultStore(settings, MasterKeys({"r1": K1}, "r1"))
    tokens = {tokenize(card(i).pan, "k"): card(i) for i in range(250)}
    for token, c in tokens.items():
        old.put(token, c)
    old.close()

    env = {**os.environ, **keys_env(("r1", K1), ("r2", K2), current="r2"), "PAYCENTER_TOPIC_PREFIX": settings.topic_prefix}
    out = subprocess.run([sys.executable, "-m", "paycenter.cli", "vault", "rotate"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "100/" in out.stdout and "done:" in out.stdout, out.stdout

    only_new = VaultStore(settings, MasterKeys({"r2": K2}, "r2"))
    try:
        only_new.table.catch_up()
        for token, c in tokens.items():
            assert only_new.get(token, fresh=False) == c
        again = subprocess.run([sys.executable, "-m", "paycenter.cli", "vault", "rotate"], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and " 0 re-wrapped" in again.stdout, again.stdout + again.stderr
    finally:
        only_new.close()


def test_a_card_written_during_the_rotation_is_not_overwritten_by_its_old_copy(settings: Settings):
    # r2: the first test's rotation (same vault topic) left its records under it
    both = MasterKeys({"r1": K1, "r2": K2, "r3": K3}, "r3")
    old = VaultStore(settings, MasterKeys({"r1": K1}, "r1"))
    mine = [f"tok_during_{i:03d}" for i in range(150)]
    for i, token in enumerate(mine):
        old.put(token, card(i))
    newer = card(999)
    late = sorted(mine)[-1]  # re-wrapped last, from the snapshot's older value

    rotating = VaultStore(settings, both)
    writer = VaultStore(settings, both)

    def progress(done: int, total: int) -> None:
        if done == 100:  # the customer re-binds this card while the rotation is half way
            writer.put(late, newer)
    rotating.rotate(progress)
    reader = VaultStore(settings, MasterKeys({"r3": K3}, "r3"))
    try:
        reader.table.catch_up()
        assert reader.get(late, fresh=False) == newer
        for token in sorted(mine)[:-1]:
            assert envelope.Sealed.from_bytes(reader.table.get(token)).key_id == "r3"
    finally:
        for s in (old, rotating, writer, reader):
            s.close()
