"""`paycenter vault`: the card vault's maintenance.

    paycenter vault rotate     re-wrap every card's data key under PAYCENTER_VAULT_KEY_ID

Rotating a master key: add the new key to PAYCENTER_VAULT_KEYS (keep the old one), point
PAYCENTER_VAULT_KEY_ID at it, restart the cashier, executors and signers (new cards are sealed under
it), run `paycenter vault rotate`, then remove the old key. Records are re-wrapped, not
re-encrypted: card data is never decrypted by the rotation. Running it again changes nothing.
"""
from __future__ import annotations

import argparse
import sys


def cmd_rotate(args) -> int:
    from infra.settings import load
    from processors.vault.envelope import TamperedRecord
    from processors.vault.keys import VaultKeyError
    from streams.views.vault import VaultStore

    try:
        store = VaultStore(load())
    except (VaultKeyError, RuntimeError) as exc:
        print(f"vault rotate: {exc}", file=sys.stderr)
        return 1
    print(f"re-wrapping card records under key {store.keys.current!r} ...", flush=True)
    try:
        report = store.rotate(lambda done, total: print(f"  {done}/{total} records", flush=True))
    except (VaultKeyError, TamperedRecord) as exc:
        print(f"vault rotate: stopped, nothing lost (records not yet re-wrapped keep their old key): {exc}",
              file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"done: {report.records} records, {report.rewrapped} re-wrapped, "
          f"{report.rewritten_again} written during the rotation re-wrapped again; "
          f"every record now opens with key {store.keys.current!r}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("vault", help="card vault maintenance (key rotation)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    vs = p.add_subparsers(dest="vault_command", required=True)
    r = vs.add_parser("rotate", help="re-wrap every card's data key under PAYCENTER_VAULT_KEY_ID, with progress")
    r.set_defaults(func=cmd_rotate)
