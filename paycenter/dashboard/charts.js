// Time-series charts on uPlot (vendored into static/ by `make deps`): one line per channel over the
// selected window, a time axis and a labelled value axis, hover values in the legend, and shaded
// periods (the demotion timeline). The container's data-* attributes say what was drawn, so a
// headless browser test can check the axes and series without reading pixels.
"use strict";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];
const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
const hhmm = s => new Date(s * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", hour12: false});

class TimeChart {
  // spec: {yLabel, yRange(min, max) -> [lo, hi], tick(v) -> axis text, fmt(v) -> legend text}
  constructor(el, spec) {
    this.el = el;
    this.spec = spec;
    this.area = el.querySelector(".plot");
    this.waiting = el.querySelector(".waiting");
    this.plot = null;
    this.keys = null;
    this.window = {lo: 0, hi: 60};
    this.bands = [];
    window.addEventListener("resize", () => this.plot && this.plot.setSize({width: this.width(), height: 240}));
  }

  width() { return Math.max(320, this.area.clientWidth); }

  // window {lo, hi} in epoch seconds; xs one per minute; ys one array per key (null: no result)
  update(win, keys, xs, ys, bands) {
    this.window = win;
    this.bands = bands || [];
    const data = [xs, ...ys];
    if (!this.plot || this.keys !== keys.join(",")) this.build(keys, data);
    else this.plot.setData(data);
    this.showLatest(this.plot);
    const points = ys.reduce((n, y) => n + y.filter(v => v != null).length, 0);
    this.el.dataset.series = keys.join(",");
    this.el.dataset.points = String(points);
    this.waiting.hidden = points > 0;
  }

  build(keys, data) {
    if (this.plot) this.plot.destroy();
    this.keys = keys.join(",");
    const spec = this.spec;
    const opts = {
      width: this.width(), height: 240,
      scales: {x: {time: true, range: () => [this.window.lo, this.window.hi]}, y: {range: spec.yRange}},
      series: [
        {label: "time", value: (u, v) => v == null ? "—" : hhmm(v)},
        ...keys.map((k, i) => ({
          label: k, stroke: COLORS[i % COLORS.length], width: 2,
          // a minute between gaps has no line to draw: show the points while they are few
          points: {show: u => u.data[0].length <= 90, size: 5},
          value: (u, v) => v == null ? "—" : spec.fmt(v),
        })),
      ],
      axes: [
        {label: `time (${TZ})`, values: (u, splits) => this.record("xTicks", splits.map(hhmm))},
        {label: spec.yLabel, size: 64, values: (u, splits) => this.record("yTicks", splits.map(spec.tick))},
      ],
      legend: {live: true},
      cursor: {drag: {x: false, y: false}},
      hooks: {
        drawClear: [u => this.drawBands(u)],
        setCursor: [u => { if (u.cursor.idx == null) this.showLatest(u); }],
      },
    };
    this.el.dataset.xLabel = opts.axes[0].label;
    this.el.dataset.yLabel = spec.yLabel;
    this.plot = new uPlot(opts, data, this.area);
  }

  // the legend shows the hovered minute, else the latest minute with a value
  showLatest(u) {
    let idx = null;
    for (let i = u.data[0].length - 1; i >= 0 && idx == null; i--)
      if (u.data.slice(1).some(y => y[i] != null)) idx = i;
    if (idx != null) u.setLegend({idx});
  }

  record(name, labels) {
    this.el.dataset[name] = labels.join(",");
    return labels;
  }

  // under the series: a red band per period {from, to, label}, clipped to the plot
  drawBands(u) {
    if (!this.bands.length) return;
    const ctx = u.ctx, {left, top, width, height} = u.bbox, r = uPlot.pxRatio;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    this.bands.forEach((b, i) => {
      const x0 = Math.max(left, u.valToPos(b.from, "x", true));
      const x1 = Math.min(left + width, u.valToPos(b.to, "x", true));
      if (x1 < left || x0 > left + width) return;
      ctx.fillStyle = "rgba(220, 38, 38, 0.13)";
      ctx.fillRect(x0, top, Math.max(x1 - x0, 2 * r), height);
      ctx.fillStyle = "#b42318";
      ctx.fillRect(x0, top, 2 * r, height);  // where it began
      ctx.font = `${11 * r}px system-ui, sans-serif`;
      // at the bottom, where success rates rarely are; inside the plot, left of the band's end if need be
      const w = ctx.measureText(b.label).width;
      const x = x0 + 5 * r + w <= left + width ? x0 + 5 * r : Math.max(left, x1 - 4 * r - w);
      ctx.fillText(b.label, x, top + height - (6 + 13 * (i % 4)) * r);
    });
    ctx.restore();
  }
}

// [{t, k, ...}] rows over a window -> minute xs and one value array per key
function minuteSeries(win, rows, value) {
  const xs = [];
  for (let t = win.lo; t < win.hi; t += 60) xs.push(t);
  const keys = [...new Set(rows.map(r => r.k).filter(k => k))].sort();
  const at = new Map(rows.map(r => [`${r.k}@${r.t}`, r]));
  const ys = keys.map(k => xs.map(t => { const r = at.get(`${k}@${t}`); return r ? value(r) : null; }));
  return {xs, keys, ys};
}
