// customersim live view: draws the store plan once (SVG), the shoppers on a canvas above it at
// every frame, and the figures, bars and charts around it. Data comes from /events (Server-Sent
// Events): one `hello` (layout, topics, speed, history), then self-contained `frame`s, and, when the
// run checks the system under test, `checks` whenever they changed (at most once a second).
"use strict";

(function () {
  const MARK_COLOR = [232, 89, 12]; // --accent
  const DEPARTMENT_COLORS = ["#4263eb", "#0ca678", "#ae3ec9", "#1098ad", "#d6336c", "#37b24d",
    "#7048e8", "#1c7ed6", "#a61e4d", "#5c940d", "#0b7285", "#862e9c"];
  const CHECKOUT_COLOR = "#f59f00";
  const TOPIC_COLORS = ["#4263eb", "#e8590c", "#2f9e44", "#ae3ec9", "#1098ad", "#d6336c"];
  const HISTORY_MS = 10 * 60 * 1000;
  const FREE = 0xffff;

  const token = new URLSearchParams(location.search).get("token");
  const withToken = (path) => (token ? path + "?token=" + encodeURIComponent(token) : path);
  const $ = (id) => document.getElementById(id);
  const fmt = new Intl.NumberFormat("en-US");
  const fmt1 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  const state = {
    hello: null,
    frame: null,
    marks: [], // [x0, y0, x1, y1, ...] of the shoppers drawn last
    frames: 0,
    pending: false,
    groups: [], // [x, y, shoppers] of each position drawn last
    lastLag: null,
    series: [], // {wall, clock, inside, rates[]}
    lastPointAt: 0,
    zoneColor: [],
    checks: null, // the last `checks` event's data
    checksSeen: 0,
  };

  // Charts run on the wall clock at real time (the last 10 minutes) and on the simulated clock
  // when the run is faster (the whole run, thinned to MAX_POINTS), so a fast run fills them.
  const MAX_POINTS = 1200;
  function simulatedAxis() {
    const speed = state.hello && state.hello.speed;
    return speed === null || speed > 1;
  }

  // --- the plan -------------------------------------------------------------------------------

  function svg(tag, attrs, parent) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  function drawPlan(layout) {
    const plan = $("plan");
    plan.replaceChildren();
    const { width: W, height: H, cell } = layout;
    plan.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const unit = Math.max(W, H) / 900; // one CSS pixel at a 900 px wide plan
    svg("rect", { x: 0, y: 0, width: W, height: H, fill: "#fbfcfe", stroke: "#c5cddb",
      "stroke-width": 2 * unit }, plan);

    const cols = Math.ceil(W / cell), rows = Math.ceil(H / cell);
    if (layout.zones.length === 0 && cols * rows <= 2500) {
      const grid = svg("g", { stroke: "#e6eaf1", "stroke-width": unit }, plan);
      for (let c = 1; c < cols; c++) svg("line", { x1: c * cell, y1: 0, x2: c * cell, y2: H }, grid);
      for (let r = 1; r < rows; r++) svg("line", { x1: 0, y1: r * cell, x2: W, y2: r * cell }, grid);
    }

    const base = Math.max(W, H) / 62;
    let department = 0;
    state.zoneColor = layout.zones.map((zone) => {
      if (zone.kind === "department") return DEPARTMENT_COLORS[department++ % DEPARTMENT_COLORS.length];
      if (zone.kind === "checkout") return CHECKOUT_COLOR;
      return null;
    });
    // Obstacles first, so zone outlines and labels stay on top.
    const order = layout.zones.map((zone, index) => index)
      .sort((a, b) => (layout.zones[a].kind === "obstacle" ? 0 : 1) - (layout.zones[b].kind === "obstacle" ? 0 : 1));
    for (const index of order) {
      const zone = layout.zones[index];
      const [x1, y1, x2, y2] = zone.area;
      const w = x2 - x1 + 1, h = y2 - y1 + 1;
      if (zone.kind === "obstacle") {
        const wall = svg("rect", { x: x1, y: y1, width: w, height: h, fill: "#8a93a5", rx: unit }, plan);
        svg("title", {}, wall).textContent = zone.name;
        continue;
      }
      const color = state.zoneColor[index];
      svg("rect", { x: x1, y: y1, width: w, height: h, fill: color, "fill-opacity": 0.12,
        stroke: color, "stroke-width": 1.5 * unit, rx: 2 * unit, class: "zone" }, plan);
      const size = Math.max(Math.min(base, h * 0.3, (w * 0.92) / (zone.name.length * 0.56)), unit * 7);
      const label = svg("text", { x: x1 + w / 2, y: y1 + h / 2, "font-size": size,
        "text-anchor": "middle", "dominant-baseline": "central", fill: color,
        "font-weight": 600, "font-family": "system-ui, sans-serif", class: "zone-name" }, plan);
      label.textContent = zone.name;
    }

    const [ex, ey] = layout.entrance, [xx, xy] = layout.exit;
    const oneDoor = ex === xx && ey === xy;
    const door = (x, y, color, name) => {
      // The door's cell, tinted, and a dot of a fixed size on screen at the published point.
      const c0 = Math.floor(x / cell) * cell, r0 = Math.floor(y / cell) * cell;
      svg("rect", { x: c0, y: r0, width: Math.min(cell, W - c0), height: Math.min(cell, H - r0),
        fill: color, "fill-opacity": 0.18 }, plan);
      const r = unit * 5;
      svg("circle", { cx: x + 0.5, cy: y + 0.5, r, fill: color, stroke: "#fff", "stroke-width": 1.5 * unit }, plan);
      const below = y < H / 2;
      const text = svg("text", { x: x + 0.5, y: y + 0.5 + (below ? 1 : -1) * (Math.max(r, cell / 2) + base * 0.8),
        "font-size": base * 0.85, "text-anchor": "middle", "dominant-baseline": "central",
        fill: color, "font-weight": 600, "font-family": "system-ui, sans-serif", class: "door-name" }, plan);
      text.textContent = name;
    };
    if (oneDoor) {
      door(ex, ey, "#2f9e44", "Door");
    } else {
      door(ex, ey, "#2f9e44", "Entrance");
      door(xx, xy, "#c92a2a", "Exit");
    }

    const kinds = { department: 0, checkout: 0, obstacle: 0 };
    for (const zone of layout.zones) kinds[zone.kind]++;
    // The legend names what this layout has, nothing else.
    const legend = $("map-legend");
    legend.replaceChildren();
    const entries = [["shopper", "shopper"]];
    if (kinds.department) entries.push(["department", "department"]);
    if (kinds.checkout) entries.push(["checkout", "checkout"]);
    if (kinds.obstacle) entries.push(["obstacle", "wall / fixture"]);
    if (oneDoor) entries.push(["door", "door"]);
    else entries.push(["entrance", "entrance"], ["exit", "exit"]);
    for (const [kind, name] of entries) {
      const item = document.createElement("span");
      item.dataset.kind = kind;
      item.innerHTML = `<i class="swatch ${kind}"></i>`;
      item.appendChild(document.createTextNode(name));
      legend.appendChild(item);
    }
    $("map-foot").textContent = layout.zones.length
      ? `${W} × ${H} store units, ${cols} × ${rows} walking grid (cell ${cell}) · ` +
        `${kinds.department} departments, ${kinds.checkout} checkouts, ${kinds.obstacle} walls and fixtures`
      : `Plain grid: ${cols} × ${rows} cells, one door`;
  }

  function sizeMap() {
    const layout = state.hello && state.hello.layout;
    if (!layout) return;
    const wrap = document.querySelector(".map-wrap");
    const maxHeight = Math.max(320, window.innerHeight - 240);
    const width = Math.min(wrap.clientWidth, (maxHeight * layout.width) / layout.height);
    const height = (width * layout.height) / layout.width;
    const map = $("map");
    map.style.width = width + "px";
    map.style.height = height + "px";
    const canvas = $("marks");
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    schedule();
  }

  // Canvas pixel of store point (x, y): the centre of the unit square the position names.
  function toCanvas(x, y) {
    const layout = state.hello.layout;
    const canvas = $("marks");
    return [((x + 0.5) * canvas.width) / layout.width, ((y + 0.5) * canvas.height) / layout.height];
  }

  function drawMarks() {
    const canvas = $("marks");
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const layout = state.hello && state.hello.layout;
    if (!layout) return;
    const count = state.marks.length / 2;
    const k = canvas.width / layout.width;
    const dpr = window.devicePixelRatio || 1;
    const radius = Math.max(2.5 * dpr, Math.min(layout.cell * k * 0.38, 9 * dpr));
    ctx.fillStyle = `rgb(${MARK_COLOR.join(",")})`;
    if (count > 3000) {
      const side = Math.max(2 * dpr, Math.min(radius, 3 * dpr));
      for (const [x, y, n] of state.groups) {
        const [cx, cy] = toCanvas(x, y);
        const s = n > 1 ? side * 1.6 : side;
        ctx.fillRect(cx - s / 2, cy - s / 2, s, s);
      }
    } else {
      const shared = Math.max(radius * 1.35, 7 * dpr);
      ctx.beginPath();
      for (const [x, y, n] of state.groups) {
        const [cx, cy] = toCanvas(x, y);
        const r = n > 1 ? shared : radius;
        ctx.moveTo(cx + r, cy);
        ctx.arc(cx, cy, r, 0, 2 * Math.PI);
      }
      ctx.fill();
      ctx.lineWidth = Math.max(1, dpr);
      ctx.strokeStyle = "rgba(255,255,255,0.9)";
      ctx.stroke();
      ctx.fillStyle = "#fff";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.font = `700 ${Math.round(shared * 1.1)}px system-ui, sans-serif`;
      for (const [x, y, n] of state.groups) {
        if (n < 2) continue;
        const [cx, cy] = toCanvas(x, y);
        ctx.fillText(n > 99 ? "99+" : String(n), cx, cy + 0.5 * dpr);
      }
    }
    canvas.dataset.marks = String(count);
    canvas.dataset.positions = String(state.groups.length);
  }

  // --- figures ----------------------------------------------------------------------------------

  function pad(n) { return String(n).padStart(2, "0"); }

  function showClock(ms) {
    const d = new Date(ms);
    $("clock").textContent = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    $("date").textContent = d.toLocaleDateString("en-GB", { weekday: "short", day: "numeric",
      month: "short", year: "numeric", timeZone: "UTC" }) + " · UTC";
  }

  function duration(ms) {
    if (ms < 1000) return `${fmt.format(Math.round(ms))} ms`;
    if (ms < 60000) return `${fmt1.format(ms / 1000)} s`;
    const minutes = Math.floor(ms / 60000), seconds = Math.round((ms % 60000) / 1000);
    if (minutes < 60) return `${minutes} min ${seconds} s`;
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  function showLag(lag) {
    if (lag === null || lag === undefined) return;
    const speed = state.hello.speed;
    // The lag is measured on the simulated clock; at speed X a wall second is X simulated ones.
    const wallMs = speed ? lag / speed : lag;
    $("lag").textContent = duration(wallMs);
    $("lag").style.color = wallMs > 2000 ? "var(--bad)" : wallMs > 500 ? "var(--warn)" : "";
    $("lag-sub").textContent = speed === 1 ? "behind the clock" : `${duration(lag)} on the simulated clock`;
  }

  // One list per kind: checkouts in their own card at the top of the side column (visible
  // without scrolling), departments below. A bar is drawn from the very number beside it, as a
  // share of the largest in its list.
  function showZones(counts) {
    const layout = state.hello.layout;
    const lists = [
      { box: $("checkouts"), kind: "checkout" },
      { box: $("zones"), kind: "department" },
    ];
    for (const { box, kind } of lists) {
      const shown = layout.zones.map((zone, index) => ({ zone, index })).filter(({ zone }) => zone.kind === kind);
      if (!box.dataset.built) {
        box.dataset.built = "1";
        box.replaceChildren();
        if (kind === "checkout") $("checkouts-card").hidden = !shown.length;
        if (!shown.length && kind === "department") {
          const empty = document.createElement("div");
          empty.className = "empty";
          empty.textContent = "This layout has no departments (the plain grid).";
          box.appendChild(empty);
        }
        for (const { zone, index } of shown) {
          const row = document.createElement("div");
          row.className = "zone-row";
          row.innerHTML = '<span class="name"></span><span class="bar"><i></i></span><span class="count">0</span>';
          row.querySelector(".name").textContent = zone.name;
          row.querySelector(".name").title = `${zone.name} (${zone.kind})`;
          row.querySelector(".bar i").style.background = state.zoneColor[index];
          row.dataset.zone = String(index);
          row.dataset.kind = kind;
          box.appendChild(row);
        }
      }
      const values = shown.map(({ index }) => counts[index] || 0);
      const max = Math.max(1, ...values);
      for (const row of box.querySelectorAll(".zone-row")) {
        const n = counts[Number(row.dataset.zone)] || 0;
        row.dataset.count = String(n);
        row.dataset.share = String(n / max);
        row.querySelector(".count").textContent = fmt.format(n);
        row.querySelector(".bar i").style.width = `${(100 * n) / max}%`;
      }
    }
  }

  // --- charts -----------------------------------------------------------------------------------

  // The top of a chart: four steps of 1, 2 or 5 × 10^k (at least 1), so tick labels are whole.
  function niceMax(value) {
    const raw = Math.max(value / 4, 1);
    const pow = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw);
    return 4 * step;
  }

  function compact(value) {
    if (value >= 1e6) return fmt1.format(value / 1e6) + "M";
    if (value >= 1e4) return fmt1.format(value / 1e3) + "k";
    return fmt.format(Math.round(value));
  }

  function drawChart(canvas, lines, fill) {
    const dpr = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth, cssH = canvas.clientHeight;
    if (canvas.width !== Math.round(cssW * dpr)) canvas.width = Math.round(cssW * dpr);
    if (canvas.height !== Math.round(cssH * dpr)) canvas.height = Math.round(cssH * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    const left = 44, right = 8, top = 8, bottom = 20;
    const w = cssW - left - right, h = cssH - top - bottom;
    const [from, to] = chartSpan();
    const span = Math.max(1, to - from);
    let max = 0;
    for (const line of lines) for (const p of line.points) if (p[0] >= from) max = Math.max(max, p[1]);
    max = niceMax(max);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7588";
    ctx.strokeStyle = "#e9edf3";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const y = top + h - (h * i) / 4;
      ctx.beginPath(); ctx.moveTo(left, Math.round(y) + 0.5); ctx.lineTo(left + w, Math.round(y) + 0.5); ctx.stroke();
      ctx.fillText(compact((max * i) / 4), left - 6, y);
    }
    ctx.textBaseline = "top";
    if (simulatedAxis()) {
      // Simulated clock times (UTC) under the axis.
      // Seconds only on a short span, and then three labels, so they never run into each other.
      const seconds = span < 5 * 60 * 1000;
      for (let i = 0; i <= 4; i += seconds ? 2 : 1) {
        const t = from + (span * i) / 4;
        const d = new Date(t);
        const text = seconds
          ? `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
          : `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
        ctx.textAlign = i === 0 ? "left" : i === 4 ? "right" : "center";
        ctx.fillText(text, left + (w * i) / 4, top + h + 5);
      }
    } else {
      for (let m = 0; m <= 10; m += 2) {
        const x = left + w - (w * m) / 10;
        ctx.textAlign = m === 0 ? "right" : "center";
        ctx.fillText(m === 0 ? "now" : `−${m} min`, m === 0 ? left + w : x, top + h + 5);
      }
    }
    const px = (t) => left + ((t - from) / span) * w;
    const py = (v) => top + h - (v / max) * h;
    lines.forEach((line, index) => {
      const points = line.points.filter((p) => p[0] >= from);
      if (points.length < 2) return;
      ctx.beginPath();
      points.forEach((p, i) => (i ? ctx.lineTo(px(p[0]), py(p[1])) : ctx.moveTo(px(p[0]), py(p[1]))));
      ctx.strokeStyle = line.color;
      ctx.lineWidth = 1.8;
      ctx.lineJoin = "round";
      ctx.stroke();
      if (fill && index === 0) {
        ctx.lineTo(px(points[points.length - 1][0]), top + h);
        ctx.lineTo(px(points[0][0]), top + h);
        ctx.closePath();
        ctx.globalAlpha = 0.1;
        ctx.fillStyle = line.color;
        ctx.fill();
        ctx.globalAlpha = 1;
      }
    });
  }

  // The time the charts show: [from, to] on the clock of their axis.
  function chartSpan() {
    if (!simulatedAxis()) {
      const now = Date.now();
      return [now - HISTORY_MS, now];
    }
    const to = state.frame ? state.frame.clock_ms
      : state.series.length ? state.series[state.series.length - 1].clock : Date.now();
    const first = state.series.length ? state.series[0].clock : to;
    return [Math.min(first, to - 60 * 1000), to];
  }

  // A point's time on the charts' axis.
  function pointTime(p) { return simulatedAxis() ? p.clock : p.wall; }

  function drawCharts() {
    const hello = state.hello;
    if (!hello) return;
    drawChart($("chart-inside"), [{ color: "#e8590c", points: state.series.map((p) => [pointTime(p), p.inside]) }], true);
    drawChart($("chart-rates"), hello.topics.map((topic, i) => ({
      color: TOPIC_COLORS[i % TOPIC_COLORS.length],
      points: state.series.map((p) => [pointTime(p), p.rates[i] || 0]),
    })), false);
  }

  function addPoint(wall, clock, inside, rates) {
    state.series.push({ wall, clock, inside, rates });
    if (simulatedAxis()) {
      // The whole run, thinned: every other older point goes when there are too many.
      if (state.series.length > MAX_POINTS) {
        const keep = state.series.length - 100;
        state.series = state.series.filter((p, i) => i >= keep || i % 2 === 0);
      }
    } else {
      const from = Date.now() - HISTORY_MS;
      while (state.series.length && state.series[0].wall < from) state.series.shift();
    }
  }

  // The most shoppers inside over what the charts show (and now), and what that span is.
  function peakText(now) {
    const [from] = chartSpan();
    let peak = now;
    for (const p of state.series) if (pointTime(p) >= from) peak = Math.max(peak, p.inside);
    if (!simulatedAxis()) return `peak ${fmt.format(peak)} in the last 10 min`;
    const d = new Date(from);
    return `peak ${fmt.format(peak)} since ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} (simulated)`;
  }

  // --- checks -----------------------------------------------------------------------------------

  const numberFormats = new Map();
  // `value` with at most `places` decimals.
  function decimals(value, places) {
    if (!numberFormats.has(places)) {
      numberFormats.set(places, new Intl.NumberFormat("en-US", { maximumFractionDigits: places }));
    }
    return numberFormats.get(places).format(value);
  }

  // Seconds in the unit that reads best: 1.234 s, 850 ms, 1.5 ms, 120 µs.
  function seconds(value) {
    if (typeof value !== "number") return "–";
    if (value >= 1 || value === 0) return `${decimals(value, 3)} s`;
    if (value >= 1e-3) return `${decimals(value * 1e3, 1)} ms`;
    return `${decimals(value * 1e6, 0)} µs`;
  }

  // A threshold's measured value in its own terms: a duration, events/s, a share (as the
  // expression's `rate` takes it, 0 to 1) or a count.
  function measuredText(threshold) {
    const value = threshold.measured;
    if (value === null || value === undefined) return "no data";
    if (threshold.unit === "s") return seconds(value);
    if (threshold.unit) return `${decimals(value, 1)} ${threshold.unit}`;
    if (/^\s*rate\b/.test(threshold.threshold)) return decimals(value, 4);
    return fmt.format(value);
  }

  // A new element with a class and text, appended to `parent`.
  function el(tag, className, text, parent) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function bold(text) { return el("b", null, text); }

  // What a rule counts, in the order the run report lists them; a tone marks a count that is
  // bad news when above zero (the number and its name say it too, not the colour alone).
  const FIGURES = [["expected", null], ["answered", null], ["late", "warn"],
    ["missing", "bad"], ["unexpected", "warn"], ["invalid", "bad"]];

  function showRule(rule) {
    const block = el("div", "rule");
    block.dataset.name = rule.name;
    const head = el("div", "rule-head", null, block);
    el("span", "rule-name", rule.name, head).title = rule.name;
    const what = `on ${rule.on} → ${rule.reply_topic}, within ${seconds(rule.within_seconds)}`;
    el("span", "rule-what", what, head).title = what;
    const figures = el("div", "figures", null, block);
    for (const [name, tone] of FIGURES) {
      const n = rule[name] || 0;
      const figure = el("div", tone && n > 0 ? `figure ${tone}` : "figure", null, figures);
      figure.dataset.figure = name;
      el("span", "n", fmt.format(n), figure);
      el("span", "label", name, figure);
    }
    const foot = el("div", "rule-foot", null, block);
    const latency = rule.latency_seconds || {};
    if ((rule.answered || 0) + (rule.late || 0) > 0) {
      foot.append("reply latency p50 ", bold(seconds(latency.p50)), " · p99 ", bold(seconds(latency.p99)));
    } else {
      foot.append("no reply yet");
    }
    // Events whose window is still open, and those not judged here.
    const open = rule.expected - rule.answered - rule.late - rule.missing
      - (rule.untracked || 0) - (rule.pending || 0);
    if (open > 0) foot.append(` · ${fmt.format(open)} waiting`);
    for (const name of ["foreign", "untracked", "pending"]) {
      if (rule[name] > 0) foot.append(` · ${fmt.format(rule[name])} ${name}`);
    }
    return block;
  }

  function showDelivery(delivery) {
    const line = el("div", "check-line delivery");
    line.append("Delivery: ", bold(fmt.format(delivery.received)), " of ",
      bold(fmt.format(delivery.published)), " back · ", bold(fmt.format(delivery.lost)), " lost · ",
      bold(fmt.format(delivery.duplicates)), " duplicates");
    if (delivery.received > 0) line.append(" · p99 ", bold(seconds(delivery.latency_seconds.p99)));
    return line;
  }

  // The faults the sensor stages injected so far (`sensors:` on), out of the reports to send.
  function showSensors(sensors) {
    const line = el("div", "check-line sensors");
    line.append("Sensors: ", bold(fmt.format(sensors.reports || 0)), " reports");
    for (const name of ["thinned", "dropped", "duplicated", "reordered", "delayed", "noisy", "skewed", "missed_doors"]) {
      if (sensors[name] > 0) line.append(" · ", bold(fmt.format(sensors[name])), ` ${name.replace("_", " ")}`);
    }
    return line;
  }

  function showThresholds(thresholds) {
    const table = el("table", "thresholds");
    el("caption", null, "Thresholds", table);
    const body = el("tbody", null, null, table);
    for (const threshold of thresholds) {
      const passed = !!threshold.passed;
      const row = el("tr", passed ? "passed" : "failed", null, body);
      row.dataset.metric = threshold.metric;
      const measured = measuredText(threshold);
      row.title = `${threshold.metric} ${threshold.threshold}: measured ${measured}, ${passed ? "passed" : "failed"}`;
      const mark = el("td", "mark", null, row);
      el("span", "verdict-mark", passed ? "✓" : "✗", mark).setAttribute("aria-hidden", "true");
      el("span", "sr-only", passed ? "passed" : "failed", mark);
      const what = el("td", "what", null, row);
      el("span", "metric", threshold.metric, what);
      el("span", "expr", threshold.threshold, what);
      el("td", "measured", measured, row);
    }
    return table;
  }

  // The Checks card, rebuilt from each `checks` event (a few dozen nodes, once a second at most).
  function onChecks(checks) {
    state.checks = checks;
    state.checksSeen++;
    const parts = (checks.expectations || []).map(showRule);
    if (checks.delivery) parts.push(showDelivery(checks.delivery));
    if (checks.subscription_gaps > 0) {
      const times = checks.subscription_gaps === 1 ? "once" : `${fmt.format(checks.subscription_gaps)} times`;
      parts.push(el("div", "check-line gaps",
        `⚠ Subscription lost ${times}: replies sent meanwhile may count as missing`));
    }
    if (checks.sensors) parts.push(showSensors(checks.sensors));
    const thresholds = checks.thresholds || [];
    if (thresholds.length) parts.push(showThresholds(thresholds));
    $("checks").replaceChildren(...parts);
    const failed = thresholds.filter((threshold) => !threshold.passed).length;
    $("checks-hint").textContent = !thresholds.length ? "so far"
      : failed ? `so far · ${failed} of ${thresholds.length} thresholds failing`
        : `so far · all ${thresholds.length} thresholds hold`;
    $("checks-card").hidden = parts.length === 0;
  }

  // --- the stream -------------------------------------------------------------------------------

  function decodePositions(text) {
    const bytes = atob(text);
    const view = new DataView(new ArrayBuffer(bytes.length));
    for (let i = 0; i < bytes.length; i++) view.setUint8(i, bytes.charCodeAt(i));
    const marks = [];
    for (let i = 0; i + 3 < bytes.length; i += 4) {
      const x = view.getUint16(i, true);
      if (x === FREE) continue;
      marks.push(x, view.getUint16(i + 2, true));
    }
    return marks;
  }

  function onHello(hello) {
    state.hello = hello;
    state.series = [];
    for (const p of hello.history) addPoint(p.wall_ms, p.clock_ms, p.inside, p.rates);
    for (const hint of document.querySelectorAll(".chart-span")) {
      hint.textContent = simulatedAxis() ? "simulated time, whole run" : "last 10 min";
    }
    $("zones").dataset.built = "";
    $("checkouts").dataset.built = "";
    drawPlan(hello.layout);
    $("speed").textContent = hello.speed === null ? "max" : `× ${fmt1.format(hello.speed)}`;
    const legend = $("topic-legend");
    legend.replaceChildren();
    hello.topics.forEach((topic, i) => {
      const item = document.createElement("span");
      item.innerHTML = '<i class="swatch"></i>';
      item.firstChild.style.background = TOPIC_COLORS[i % TOPIC_COLORS.length];
      item.appendChild(document.createTextNode(topic));
      legend.appendChild(item);
    });
    sizeMap();
    drawCharts();
  }

  // Shoppers on one position are one mark with their number on it, so none is hidden: the
  // positions taken, with how many shoppers stand on each.
  function groupPositions(marks) {
    const byPosition = new Map();
    for (let i = 0; i < marks.length; i += 2) {
      const key = marks[i] * 65536 + marks[i + 1];
      byPosition.set(key, (byPosition.get(key) || 0) + 1);
    }
    const groups = [];
    for (const [key, n] of byPosition) groups.push([Math.floor(key / 65536), key % 65536, n]);
    return groups;
  }

  function onFrame(frame) {
    state.frame = frame;
    state.frames++;
    state.marks = decodePositions(frame.pos);
    state.groups = groupPositions(state.marks);
    const now = Date.now();
    // A point a second at real time; at every frame on a faster clock (a fast run is short).
    if (simulatedAxis() || now - state.lastPointAt >= 1000) {
      state.lastPointAt = now;
      addPoint(now, frame.clock_ms, frame.inside, frame.rates);
    }
    schedule();
  }

  function render() {
    state.pending = false;
    drawMarks();
    const frame = state.frame;
    if (!frame) return;
    showClock(frame.clock_ms);
    $("sim-rate").textContent = `${fmt1.format(frame.sim_rate)} simulated s per second`;
    $("inside").textContent = fmt.format(frame.inside);
    $("peak").textContent = peakText(frame.inside);
    const rate = frame.rates.reduce((a, b) => a + b, 0);
    $("rate").textContent = compact(rate);
    $("total").textContent = frame.target == null
      ? `${fmt.format(frame.totals.reduce((a, b) => a + b, 0))} events so far`
      : `target ${compact(frame.target)} per simulated second (load stages)`;
    showLag(frame.lag_ms);
    showZones(frame.zones);
    if (state.frames % 10 === 1) drawCharts();
  }

  function schedule() {
    if (!state.pending) {
      state.pending = true;
      requestAnimationFrame(render);
    }
  }

  function setStatus(kind, text) {
    const status = $("status");
    status.className = "status " + kind;
    $("status-text").textContent = text;
  }

  function connect() {
    const source = new EventSource(withToken("events"));
    source.addEventListener("open", () => setStatus("live", "live"));
    source.addEventListener("hello", (e) => onHello(JSON.parse(e.data)));
    source.addEventListener("frame", (e) => onFrame(JSON.parse(e.data)));
    source.addEventListener("checks", (e) => onChecks(JSON.parse(e.data)));
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) setStatus("lost", "disconnected");
      else setStatus("connecting", "reconnecting… (the run may have ended)");
    });
  }

  window.addEventListener("resize", () => { sizeMap(); drawCharts(); });
  setInterval(drawCharts, 1000);

  // For tests and the curious: what the page drew last.
  window.liveView = {
    markColor: MARK_COLOR,
    frames: () => state.frames,
    marks: () => {
      const out = [];
      for (let i = 0; i < state.marks.length; i += 2) out.push([state.marks[i], state.marks[i + 1]]);
      return out;
    },
    toCanvas: (x, y) => toCanvas(x, y).map(Math.round),
    groups: () => state.groups.map((g) => g.slice()),
    chartAxis: () => (simulatedAxis() ? "simulated" : "wall"),
    chartSpan: () => chartSpan(),
    checks: () => state.checks,
    checksSeen: () => state.checksSeen,
  };

  connect();
})();
