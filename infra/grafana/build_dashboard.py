"""Writes infra/grafana/paycenter.json: a sample Grafana dashboard over paycenter's Prometheus metrics
and ClickHouse rollups. Import it in Grafana (Dashboards → Import) and pick the two data sources
(Prometheus; ClickHouse through the grafana-clickhouse-datasource plugin).

    python infra/grafana/build_dashboard.py
"""
from __future__ import annotations

import json
from pathlib import Path

PROM = {"type": "prometheus", "uid": "${prometheus}"}
CH = {"type": "grafana-clickhouse-datasource", "uid": "${clickhouse}"}
LATEST = ("(period, version) IN (SELECT period, max(version) FROM rollup_runs WHERE grain = 'minute' "
          "AND $__timeFilter(period) GROUP BY period)")


def prom(title: str, expr: str, legend: str, unit: str = "short") -> dict:
    return {"type": "timeseries", "title": title, "datasource": PROM,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": "A", "datasource": PROM, "expr": expr, "legendFormat": legend}]}


def ch(title: str, sql: str, unit: str = "short", kind: str = "timeseries") -> dict:
    return {"type": kind, "title": title, "datasource": CH,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": "A", "datasource": CH, "format": 0 if kind == "timeseries" else 1,
                         "queryType": "sql", "rawSql": " ".join(sql.split())}]}


PANELS = [
    prom("Records consumed per second, by role and topic", "sum by (role, topic) (rate(paycenter_consumed_total[1m]))",
         "{{role}} {{topic}}", "ops"),
    prom("Consumer lag", "max by (role, topic) (paycenter_consumer_lag)", "{{role}} {{topic}}"),
    prom("Channel call p99", "histogram_quantile(0.99, sum by (le, channel_id) (rate(paycenter_channel_call_seconds_bucket[5m])))",
         "{{channel_id}}", "s"),
    prom("Routing decisions by channel-bank", "sum by (channel_id, bank_code) (rate(paycenter_routing_decisions_total[1m]))",
         "{{channel_id}}:{{bank_code}}", "ops"),
    prom("Demotions", "sum by (channel_id, bank_code, reason) (increase(paycenter_demotions_total[5m]))",
         "{{channel_id}}:{{bank_code}} {{reason}}"),
    prom("Dead letters", "sum by (role, reason_code) (increase(paycenter_dead_letters_total[5m]))", "{{role}} {{reason_code}}"),
    prom("ClickHouse sink: rows per insert (p50) and failed inserts",
         "histogram_quantile(0.5, sum by (le) (rate(paycenter_sink_batch_rows_bucket[5m]))) or "
         "sum(increase(paycenter_sink_errors_total[5m]))", "journal"),
    ch("Success rate per channel (per attempt, minute rollups)",
       f"""SELECT period AS time, channel_id, sum(successes) / greatest(sum(results), 1) AS success_rate
           FROM rollup_attempts WHERE grain = 'minute' AND $__timeFilter(period) AND {LATEST}
           GROUP BY time, channel_id ORDER BY time""", "percentunit"),
    ch("Average response time per channel (ms)",
       f"""SELECT period AS time, channel_id, sum(latency_ms_sum) / greatest(sum(results), 1) AS avg_ms
           FROM rollup_attempts WHERE grain = 'minute' AND $__timeFilter(period) AND {LATEST}
           GROUP BY time, channel_id ORDER BY time""", "ms"),
    ch("Payments per business line",
       f"""SELECT period AS time, business_line, sum(payments) AS payments
           FROM rollup_payments WHERE grain = 'minute' AND $__timeFilter(period) AND {LATEST}
           GROUP BY time, business_line ORDER BY time"""),
    ch("Today's reconciliation discrepancies",
       """SELECT kind, status_case, channel_id, attempt_id, ours_amount_fen, channel_amount_fen
          FROM reconcile_discrepancies FINAL WHERE toDate(toDateTime(intDiv(found_at_ms, 1000))) = today()
          ORDER BY found_at_ms DESC LIMIT 100""", kind="table"),
]


def dashboard() -> dict:
    for i, panel in enumerate(PANELS):
        panel["id"] = i + 1
        panel["gridPos"] = {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)}
    return {
        "title": "paycenter", "uid": "paycenter", "schemaVersion": 39, "version": 1, "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"}, "tags": ["paycenter"],
        "templating": {"list": [
            {"name": "prometheus", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
            {"name": "clickhouse", "type": "datasource", "query": "grafana-clickhouse-datasource", "label": "ClickHouse"},
        ]},
        "panels": PANELS,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("paycenter.json")
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {out}")
