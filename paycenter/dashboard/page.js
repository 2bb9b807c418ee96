// The dashboard page: polls /api/state for the selected range and renders charts and tables.
"use strict";

const RANGES = {"15m": "last 15 min", "1h": "last hour", "24h": "last 24 h"};
const REFRESH_MS = 5000;  // the rollups behind the charts refresh every 5 s
const fmtTime = ms => ms ? new Date(ms).toLocaleTimeString([], {hour12: false}) : "—";
const utc = s => new Date(s * 1000).toISOString().slice(0, 16).replace("T", " ");
const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
// integer fen -> yuan text without floating point
const yuan = fen => fen == null ? "—" :
  `${fen < 0 ? "-" : ""}${Math.trunc(Math.abs(fen) / 100).toLocaleString("en")}.${String(Math.abs(fen) % 100).padStart(2, "0")}`;

let range = RANGES[location.hash.slice(1)] ? location.hash.slice(1) : "1h";

const successChart = new TimeChart(document.getElementById("sr"), {
  yLabel: "success rate (%)", yRange: () => [0, 100], tick: v => `${v}%`, fmt: v => `${v.toFixed(1)} %`,
});
const latencyChart = new TimeChart(document.getElementById("lat"), {
  yLabel: "response time (ms)", yRange: (u, min, max) => [0, Math.max(10, Math.ceil((max || 0) * 1.15))],
  tick: v => `${v} ms`, fmt: v => `${Math.round(v)} ms`,
});

function fill(id, rows, cols = "", empty = "none in this window") {
  // cols: per column, "n" for numbers (right-aligned)
  const cell = (c, i) => `<td${cols[i] === "n" ? ' class="n"' : ""}>${c}</td>`;
  document.querySelector(`#${id} tbody`).innerHTML =
    rows.map(r => "<tr>" + r.map(cell).join("") + "</tr>").join("") ||
    `<tr><td colspan="10"><i>${empty}</i></td></tr>`;
}

function renderCharts(s) {
  const win = s.chart_window;
  const sr = minuteSeries(win, s.by_channel, r => r.n_results ? 100 * r.n_ok / r.n_results : null);
  const nowS = s.now_ms / 1000;
  const bands = s.demotions.map(d => ({
    from: d.start_ms / 1000, to: d.end_ms == null ? nowS : d.end_ms / 1000, label: `${d.key} demoted`,
  }));
  successChart.update(win, sr.keys, sr.xs, sr.ys, bands);
  const lat = minuteSeries(win, s.by_channel, r => r.n_results ? r.avg_ms : null);
  latencyChart.update(win, lat.keys, lat.xs, lat.ys, []);
  document.getElementById("demotions").innerHTML = s.demotions.length
    ? "Demotions (red on the chart): " + s.demotions.map(d =>
        `<span data-demotion="${esc(d.key)}">${esc(d.key)} ${fmtTime(d.start_ms)}–${d.end_ms == null ? "now" : fmtTime(d.end_ms)}` +
        ` · level ${d.level} · ${esc(d.reason)}` +
        (d.restore_reason ? ` · restored: <span data-restore="${esc(d.restore_reason)}">${esc(d.restore_reason)}</span>` : "") +
        `</span>`).join("")
    : "No demotion in this window.";
}

function renderTables(s) {
  // every channel-bank with a health event or results: NORMAL until the monitor says otherwise
  const health = new Map(s.health.map(h => [`${h.channel_id}:${h.bank_code}`, h]));
  const results = new Map(s.by_channel_bank.map(c => [`${c.channel_id}:${c.bank_code}`, c]));
  fill("cb", [...new Set([...health.keys(), ...results.keys()])].sort().map(k => {
    const h = health.get(k) || {to_state: "NORMAL"}, c = results.get(k);
    return [esc(k), `<span class="${h.to_state}" data-state="${h.to_state}">${h.to_state}</span>`,
      c ? c.n_results : 0, c ? esc(c.success) : "—", c ? c.n_pending : 0, c && c.n_results ? c.avg_ms : "—",
      h.at_ms ? fmtTime(h.at_ms) : "—", h.to_state === "DEMOTED" ? (h.demoted_until_ms ? fmtTime(h.demoted_until_ms) : "an operator restores it") : "—",
      h.demotion_level ?? 0, esc(h.reason || h.reason_code || "")];
  }), "__nnnn__n_", "no channel-bank has results or a health event yet");
  fill("volume", s.volume.map(v => [esc(v.business_line), v.payments, v.requested, v.succeeded, v.moved, v.fees,
    v.rejected]), "_nnnnnn");
  fill("backlog", s.backlog.map(b => [esc(b.business_line), b.open_orders,
    b.oldest_ms ? Math.round((s.now_ms - b.oldest_ms) / 1000) + " s ago" : "—"]), "_n_", "no open order");
  fill("alerts", s.alerts.slice(0, 30).map(a => [fmtTime(a.at_ms), esc(a.severity), esc(a.what), esc(a.reason)]),
    "", "none since the dashboard started");
  const money = (a, f) => a == null ? "—" : `${yuan(a)} (fee ${yuan(f ?? 0)})`;
  fill("disc", s.discrepancies.slice(0, 30).map(d => [esc(d.status_case || d.kind), esc(d.channel_id), esc(d.attempt_id),
    esc(d.ours_status) + " " + money(d.ours_amount_fen, d.ours_fee_fen),
    esc(d.channel_status) + " " + money(d.channel_amount_fen, d.channel_fee_fen)]), "", "none today");
  const w = s.window;
  document.getElementById("volume-window").textContent = w ? `Window ${utc(w.lo)} – ${utc(w.hi)} UTC (${w.grain} ` +
    `rollups), as \`paycenter report volume --by business --since ${range}\` prints it.` : "";
}

function render(s) {
  for (const el of document.querySelectorAll(".range-label")) el.textContent = RANGES[range];
  if (s.chart_window) renderCharts(s);
  renderTables(s);
  const errors = Object.entries(s.errors).map(([k, v]) => `${k}: ${v}`).join("\n");
  const box = document.getElementById("errors");
  box.textContent = errors;
  box.hidden = !errors;
  document.getElementById("updated").textContent = `${RANGES[range]} · updated ${fmtTime(s.now_ms)}`;
  document.body.dataset.loaded = "1";
}

let pending = null, again = false;
async function refresh() {
  if (pending) { again = true; return; }  // e.g. another range was picked meanwhile
  const asked = range;
  pending = (async () => {
    try {
      const resp = await fetch(`/api/state?range=${asked}`);
      if (!resp.ok) throw new Error(`${resp.status} ${await resp.text()}`);
      const s = await resp.json();
      if (asked === range) render(s);
    } catch (e) {
      document.getElementById("updated").textContent = "cannot reach paycenter: " + e;
    } finally {
      pending = null;
      if (again) { again = false; refresh(); }
    }
  })();
  return pending;
}

function select(name) {
  range = name;
  history.replaceState(null, "", `#${name}`);
  for (const b of document.querySelectorAll("#ranges button")) b.setAttribute("aria-pressed", String(b.dataset.range === name));
  refresh();
}

for (const b of document.querySelectorAll("#ranges button")) b.addEventListener("click", () => select(b.dataset.range));
select(range);
setInterval(refresh, REFRESH_MS);
