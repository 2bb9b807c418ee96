"""The sample Grafana dashboard is current and names only metrics and tables that exist."""
from __future__ import annotations

import json
import re

from infra import metrics
from infra.grafana.build_dashboard import dashboard
from infra.settings import REPO_ROOT


def test_committed_json_is_what_the_builder_writes():
    committed = json.loads((REPO_ROOT / "infra" / "grafana" / "paycenter.json").read_text())
    assert committed == json.loads(json.dumps(dashboard())), "run python infra/grafana/build_dashboard.py"


def test_every_prometheus_metric_named_exists():
    known = {m._name for m in vars(metrics).values() if hasattr(m, "_name")}
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p["targets"] if "expr" in t]
    named = {re.sub(r"_(bucket|total)$", "", n) for e in exprs for n in re.findall(r"paycenter_\w+", e)}
    assert named and named <= {re.sub(r"_total$", "", k) for k in known}, named - known


def test_every_clickhouse_table_named_is_created_by_a_migration():
    ddl = " ".join(p.read_text() for p in (REPO_ROOT / "infra" / "migrations").glob("*.sql"))
    sqls = [t["rawSql"] for p in dashboard()["panels"] for t in p["targets"] if "rawSql" in t]
    for table in {t for s in sqls for t in re.findall(r"FROM (\w+)", s)}:
        assert f"CREATE TABLE IF NOT EXISTS {table}" in ddl, table
