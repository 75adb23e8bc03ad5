// parzen dashboard: one page, no build step. The server's JSON API (server.py) gives the
// experiment list and, per experiment, the trials changed since the last poll; this file
// keeps the trials in a Map and draws the open tab. Charts: uPlot (vendored) for history and
// slices, a canvas for parallel coordinates and learning curves.
"use strict";

const POLL_MS = 500;         // experiment page: a new result shows within about a second
const LOADING_POLL_MS = 100; // while the server reads the experiment (it waits a while itself)
const LIST_POLL_MS = 2000;   // experiment list
const ROW_H = 25;            // trial table row height (px), for the virtual scroll
const MAX_SLICES = 24;       // slice plots drawn (most important parameters first)
const MAX_AXES = 10;         // parallel-coordinate axes (plus the loss)
const PC_SHADES = 32;        // parallel coordinates: lines drawn in this many shades, a path each
const STATES = ["new", "running", "done", "error", "cancel"];

const S = {                  // the page's state; window.parzenDash for tests and benchmarks
  config: null, route: null, timer: null, polls: 0, renders: 0, firstRender: null,
  exp: null,                 // {key, since, trials: Map, columns, summary, workers, ...}
  list: null, logY: null, sort: {col: "tid", desc: false},
  filter: {state: "", worker: "", lossMin: "", lossMax: ""}, plots: {}, errorsFor: -1,
  importanceFor: -1, importance: null, dirty: false,
  // The parameters tab redraws at most this often (ms): at 20,000 trials a redraw of every
  // slice and of the parallel coordinates costs the browser a good part of a second.
  paramsEveryMs: 2000, paramsDrawnAt: -Infinity, paramsTimer: null, paramsDraws: 0,
  timing: null,              // the experiment page's first answer: when asked, got, drawn (ms)
};
window.parzenDash = S;

// ---- small helpers -----------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "html") el.innerHTML = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function num(x, digits = 6) {
  if (x == null || typeof x !== "number") return x == null ? "–" : String(x);
  if (!isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-4 || a >= 1e9)) return Number(x.toPrecision(digits)).toExponential();
  return String(Number(x.toPrecision(digits)));
}

function dur(s) {
  if (s == null) return "–";
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s % 3600 / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${Math.floor(s % 86400 / 3600)}h`;
}

function ago(t, now) {
  if (t == null) return "–";
  const d = now - t;
  return d >= 0 ? `${dur(d)} ago` : `in ${dur(-d)}`;
}

function stateBadge(s) { return h("span", {class: `state ${s}`}, s); }

async function api(path, options) {
  const r = await fetch(`/api/${path}`, Object.assign({credentials: "same-origin"}, options));
  let body;
  try { body = await r.json(); } catch (e) { body = {error: `the server answered ${r.status}`}; }
  if (!r.ok) throw new Error(body.error || `the server answered ${r.status}`);
  return body;
}

function banner(text, note) {
  const b = document.getElementById("banner");
  b.hidden = !text;
  b.textContent = text || "";
  b.className = note ? "banner note" : "banner";
}

function setLive(ok) {
  document.getElementById("live").textContent =
    ok ? `updated ${new Date().toLocaleTimeString()}` : "not updating";
}

// ---- routing -----------------------------------------------------------------------------

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "exp" && parts[1]) return {view: "exp", key: parts[1], tab: parts[2] || "history"};
  return {view: "list"};
}

function go() {
  const route = parseRoute();
  const same = S.route && S.route.view === route.view && S.route.key === route.key;
  S.route = route;
  clearTimeout(S.timer);
  closeDetail();
  if (!same) { S.exp = null; S.plots = {}; S.importance = null; S.importanceFor = -1;
    S.errorsFor = -1; S.logY = null; S.timing = null; }
  document.getElementById("main").replaceChildren(h("p", {class: "muted"}, "loading…"));
  if (route.view === "list") pollList(); else pollExperiment();
}

// ---- experiment list ---------------------------------------------------------------------

async function pollList() {
  try {
    S.list = await api("experiments");
    banner(S.list.unreadable.length ? `${S.list.unreadable.length} unreadable trial documents skipped: ${S.list.unreadable.slice(0, 5).join("; ")}` : "", true);
    setLive(true);
    renderList();
  } catch (e) { banner(e.message); setLive(false); }
  if (S.route.view === "list") S.timer = setTimeout(pollList, LIST_POLL_MS);
}

function renderList() {
  document.getElementById("crumb").textContent = "";
  const L = S.list;
  const rows = L.experiments.map(e => h("tr", {class: "click", "data-exp": e.exp_key,
      onclick: () => { location.hash = `#/exp/${encodeURIComponent(e.exp_key)}`; }},
    h("td", {}, h("a", {href: `#/exp/${encodeURIComponent(e.exp_key)}`}, e.exp_key)),
    STATES.map(s => h("td", {class: `num c-${s}`}, e.counts[s] ?? 0)),
    h("td", {class: "num best"}, num(e.best_loss)),
    h("td", {}, ago(e.last_activity, L.now)),
    h("td", {title: e.coordinator.detail},
      h("span", {class: e.coordinator.alive ? "alive" : "muted"},
        e.coordinator.alive ? "alive" : e.coordinator.detail.split(" ")[0]))));
  const table = h("table", {id: "experiments"},
    h("thead", {}, h("tr", {}, h("th", {}, "experiment"), STATES.map(s => h("th", {class: "num"}, s)),
      h("th", {class: "num"}, "best loss"), h("th", {}, "last activity"), h("th", {}, "coordinator"))),
    h("tbody", {}, rows));
  document.getElementById("main").replaceChildren(
    h("h2", {}, "Experiments"),
    L.experiments.length ? table : h("p", {class: "muted"}, `no experiments in ${L.where} yet`));
  markRendered();
}

// ---- experiment page: polling and merging --------------------------------------------------

async function pollExperiment() {
  const key = S.route.key;
  const since = S.exp ? S.exp.since : "";
  let next = POLL_MS;
  try {
    const asked = performance.now();
    const body = await api(`exp/${encodeURIComponent(key)}?since=${encodeURIComponent(since)}`);
    if (S.route.view !== "exp" || S.route.key !== key) return;
    if (body.loading) {      // the server is still reading the experiment: ask again soon
      if (!S.exp) document.getElementById("main").replaceChildren(
        h("p", {class: "muted", id: "loading"}, `${body.loading}…`));
      setLive(true);
      next = LOADING_POLL_MS;
    } else {
      const first = !S.exp;
      if (first) S.timing = {asked, answered: performance.now()};
      merge(body);
      S.polls += 1;
      banner(body.unreadable.length ? `${body.unreadable.length} trial documents of this experiment cannot be read and are left out: ${body.unreadable.slice(0, 3).join("; ")}` : "", true);
      setLive(true);
      renderExperiment(rowCount(body) > 0 || body.removed.length > 0 || body.reset);
      if (first) {
        const T = S.timing, E = S.exp;
        T.rendered = performance.now();
        requestAnimationFrame(() => setTimeout(() => {
          T.drawn = performance.now();
          trialsOf(E);     // the rest: the trials as objects, for the other views
        }));
      }
    }
  } catch (e) {
    banner(e.message); setLive(false);
    if (!S.exp) document.getElementById("main").replaceChildren(
      h("p", {}, h("a", {href: "#/"}, "← all experiments")));
  }
  if (S.route.view === "exp" && S.route.key === key) S.timer = setTimeout(pollExperiment, next);
}

function rowCount(body) { return body.data.length ? body.data[0].length : 0; }

function merge(body) {
  // body.data: one array per column of body.columns, a cell per changed trial (every
  // trial, in tid order, when body.reset).
  if (!S.exp || body.reset) {
    // A first answer is kept as it came until a view asks for trials: the history draws
    // from its columns at once, the trials are made after (E.trials makes them if asked).
    S.exp = {key: S.route.key, map: new Map(), pending: body, version: (S.exp ? S.exp.version : 0) + 1};
    Object.defineProperty(S.exp, "trials", {get() { return trialsOf(this); }});
  } else {
    const trials = S.exp.trials;
    const n = rowCount(body);
    for (let r = 0; r < n; r++) trials.set(...trialAt(body, r));
    for (const tid of body.removed) trials.delete(tid);
    if (n || body.removed.length) S.exp.version += 1;
  }
  const E = S.exp;
  E.since = body.since;
  E.summary = body.summary;
  E.workers = body.workers;
}

function trialAt(body, r) {
  const cols = body.columns, data = body.data, t = {};
  for (let c = 0; c < cols.length; c++) t[cols[c]] = data[c][r];
  return [t.tid, t];
}

function trialsOf(E) {
  // The trials as objects by tid (made from a first answer on first use).
  if (E.pending) {
    const body = E.pending, n = rowCount(body);
    E.pending = null;
    for (let r = 0; r < n; r++) E.map.set(...trialAt(body, r));
  }
  return E.map;
}

// ---- experiment page: layout -----------------------------------------------------------------

const TABS = [["history", "History"], ["params", "Parameters"], ["trials", "Trials"],
  ["errors", "Errors"], ["workers", "Workers"], ["curves", "Learning curves"]];

function renderExperiment(changed) {
  const E = S.exp;
  const tab = S.route.tab;
  document.getElementById("crumb").replaceChildren("/ ", h("b", {}, E.key));
  let main = document.getElementById("main");
  if (!main.querySelector("#exp-head") || main.dataset.exp !== E.key) {
    main.dataset.exp = E.key;
    main.replaceChildren(h("div", {id: "exp-head"}), h("nav", {class: "tabs"},
      TABS.map(([id, name]) => h("a", {href: `#/exp/${encodeURIComponent(E.key)}/${id}`,
        "data-tab": id}, name))), h("div", {id: "tab"}));
    S.plots = {};
  }
  main.querySelectorAll(".tabs a").forEach(a => a.classList.toggle("on", a.dataset.tab === tab));
  renderHead();
  const pane = document.getElementById("tab");
  if (pane.dataset.tab !== tab) { pane.dataset.tab = tab; pane.replaceChildren(); S.plots = {}; changed = true; }
  if (document.hidden) { S.dirty = S.dirty || changed; return; }  // drawn when shown again
  S.dirty = false;
  const draw = {history: renderHistory, params: renderParams, trials: renderTrials,
    errors: renderErrors, workers: renderWorkers, curves: renderCurves}[tab] || renderHistory;
  draw(pane, changed);
  markRendered();
}

function markRendered() {
  S.renders += 1;
  if (S.firstRender == null) S.firstRender = performance.now();
}

function renderHead() {
  const s = S.exp.summary;
  const c = s.counts;
  const finished = (c.done || 0) + (c.error || 0);
  const head = document.getElementById("exp-head");
  const actions = (S.config.actions || []).map(a => h("button", {class: "danger", "data-action": a,
    onclick: () => act(a)}, {stop: "Stop run", cancel: "Cancel queued",
      requeue: "Requeue failed", "requeue-expired": "Requeue expired"}[a] || a));
  head.replaceChildren(h("div", {class: "summary"},
    h("div", {}, h("div", {class: "muted"}, "best loss"),
      h("div", {class: "big", id: "best-loss"}, s.best ? num(s.best.loss) : "–"),
      h("div", {class: "muted"}, s.best ? `trial ${s.best.tid}` : "no trial with a loss yet")),
    h("div", {id: "counts"}, h("div", {class: "muted"}, "trials"),
      h("div", {}, Object.entries(c).filter(([, n]) => n > 0).map(([st, n]) =>
        h("span", {style: "margin-right:.7em", "data-state": st}, stateBadge(st), " ", n))),
      h("div", {class: "muted"}, `${finished} finished` + (s.max_evals != null ? ` of max_evals ${s.max_evals}` : ""))),
    h("div", {}, h("div", {class: "muted"}, "coordinator"),
      h("div", {class: s.coordinator.alive ? "alive" : /^(dead|gone)/.test(s.coordinator.detail) ? "dead" : "muted", id: "coordinator"},
        s.coordinator.alive ? "alive" : s.coordinator.detail.split(" ")[0]),
      h("div", {class: "muted"}, s.coordinator.detail)),
    actions.length ? h("div", {class: "actions"}, actions) : null));
}

async function act(name) {
  if (!confirm(`Run "${name}" on ${S.exp.key}?`)) return;
  try {
    const r = await api(`exp/${encodeURIComponent(S.exp.key)}/action/${name}`,
      {method: "POST", headers: {"X-Parzen-Action": "1"}});
    banner(`${r.command}: ${[r.output, r.message].filter(Boolean).join("\n")}`, r.ok);
  } catch (e) { banner(e.message); }
}

// ---- history -------------------------------------------------------------------------------

function lossSeries() {
  let xs = [], ys = [];
  const first = S.exp.pending;
  if (first) {             // a first answer's columns, in tid order
    const col = name => first.data[first.columns.indexOf(name)] || [];
    const tid = col("tid"), state = col("state"), loss = col("loss");
    for (let i = 0; i < tid.length; i++) {
      if (state[i] === "done" && loss[i] != null) { xs.push(tid[i]); ys.push(loss[i]); }
    }
  } else {
    const done = [];
    for (const t of S.exp.trials.values()) if (t.state === "done" && t.loss != null) done.push(t);
    done.sort((a, b) => a.tid - b.tid);
    xs = done.map(t => t.tid); ys = done.map(t => t.loss);
  }
  const best = [];
  let b = Infinity;
  for (const y of ys) { b = Math.min(b, y); best.push(b); }
  return {xs, ys, best};
}

function suggestLog(ys) {
  // Log when every loss is positive and they span more than two decades: the good trials
  // would otherwise be squashed against the axis.
  if (!ys.length) return false;
  let lo = Infinity, hi = -Infinity;
  for (const y of ys) { lo = Math.min(lo, y); hi = Math.max(hi, y); }
  return lo > 0 && hi / lo > 100;
}

function width(el) { return Math.max(320, (el.clientWidth || 900) - 4); }

// Log axes get whole decades and ticks of our own: uPlot 1.6.32's log ranging and ticks loop
// forever on some ranges (a loss of 1e-25 or less, a minimum just under a power of ten),
// which froze the page. `logScale(log)` and `logAxis(log, axis)` give a scale and an axis.
function logRange(u, lo, hi) {
  if (!(lo > 0 && hi > 0 && isFinite(lo) && isFinite(hi))) return [1, 10];
  const a = Math.max(-307, Math.floor(Math.log10(lo))), b = Math.min(307, Math.ceil(Math.log10(hi)));
  return [10 ** a, 10 ** Math.max(b, a + 1)];
}

function logSplits(u, axisIdx, min, max) {
  const a = Math.ceil(Math.log10(min) - 1e-9), b = Math.floor(Math.log10(max) + 1e-9);
  if (!(b >= a)) return [min, max];
  const step = Math.max(1, Math.ceil((b - a) / 8)), out = [];
  for (let e = a; e <= b; e += step) out.push(10 ** e);
  return out;
}

function logScale(log, scale = {}) { return log ? {...scale, distr: 3, range: logRange} : {...scale, distr: 1}; }

function logAxis(log, axis) { return log ? {...axis, splits: logSplits} : axis; }

const DOT = "#2f6fd688";

function dots(index, color) {
  // A uPlot hook drawing series `index` as small squares, in one pass. (uPlot's own points
  // are circles: a path of 20,000 arcs takes the browser the best part of a second to fill
  // and stroke, squares a tenth of that.)
  return (u, si) => {
    if (si !== index || !u.series[si].show) return;
    const xs = u.data[0], ys = u.data[si], g = u.ctx;
    const r = Math.max(1, Math.round(1.5 * (window.devicePixelRatio || 1))), side = 2 * r + 1;
    const {left, top, width, height} = u.bbox;
    // At most two squares per square-sized cell: more only darken what is dark already.
    const cols = Math.ceil(width / side) + 1, seen = new Uint8Array(cols * (Math.ceil(height / side) + 1));
    g.save();
    g.beginPath(); g.rect(left, top, width, height); g.clip();
    g.fillStyle = color;
    for (let i = 0; i < xs.length; i++) {
      const y = ys[i];
      if (y == null) continue;
      const px = Math.round(u.valToPos(xs[i], "x", true)), py = Math.round(u.valToPos(y, "y", true));
      const cx = Math.floor((px - left) / side), cy = Math.floor((py - top) / side);
      if (cx >= 0 && cy >= 0 && cx < cols) {
        const cell = cy * cols + cx;
        if (seen[cell] >= 2) continue;
        seen[cell] += 1;
      }
      g.fillRect(px - r, py - r, side, side);
    }
    g.restore();
  };
}

function renderHistory(pane, changed) {
  const {xs, ys, best} = lossSeries();
  const canLog = ys.length > 0 && ys.every(y => y > 0);
  if (S.logY == null && ys.length) S.logY = suggestLog(ys);
  const logY = canLog && !!S.logY;
  let box = pane.querySelector("#history");
  if (!box) {
    box = h("div", {id: "history"},
      h("div", {class: "controls"},
        h("label", {}, h("input", {type: "checkbox", id: "logy", onchange: e => {
          S.logY = e.target.checked; S.plots.history && S.plots.history.destroy();
          S.plots.history = null; renderHistory(pane, true); }}), " log scale"),
        h("span", {id: "history-caption", class: "muted"})),
      h("div", {id: "history-plot"}));
    pane.replaceChildren(box);
  }
  const cb = box.querySelector("#logy");
  cb.checked = logY; cb.disabled = !canLog;
  const plotEl = box.querySelector("#history-plot");
  const data = [xs, ys, best];
  let p = S.plots.history;
  if (!p || p._log !== logY) {
    if (p) p.destroy();
    plotEl.replaceChildren();
    p = new uPlot({
      width: width(pane), height: 360, scales: {x: {time: false}, y: logScale(logY)},
      legend: {live: true},
      series: [{label: "trial"},
        {label: "loss", stroke: "#2f6fd6", paths: () => null, points: {show: false}},
        {label: "best so far", stroke: "#c62f2f", width: 2,
          paths: uPlot.paths.stepped({align: 1}), points: {show: false}}],
      axes: [{label: "trial (tid)"}, logAxis(logY, {label: "loss", size: 70, values: ticks})],
      hooks: {drawSeries: [dots(1, DOT)]},
    }, data, plotEl);
    p._log = logY;
    S.plots.history = p;
  } else if (changed) p.setData(data);
  plotEl.dataset.points = String(xs.length);
  plotEl.dataset.best = best.length ? String(best[best.length - 1]) : "";
  box.querySelector("#history-caption").textContent = xs.length
    ? `${xs.length} trials with a loss; best ${num(best[best.length - 1])} (trial ${xs[ys.indexOf(best[best.length - 1])]})`
    : "no trial has finished with a loss yet";
}

// ---- parameters: importance, slices, parallel coordinates ------------------------------------

function paramMeta() { return S.exp.summary.params || []; }

const importanceOrder = () => S.importance ? S.importance.map(i => i.label).join("\n") : null;

async function loadImportance() {
  if (S.importanceFor === S.exp.version) return;
  S.importanceFor = S.exp.version;
  try {
    const before = importanceOrder();
    S.importance = (await api(`exp/${encodeURIComponent(S.exp.key)}/importance`)).importance;
    const pane = document.getElementById("tab");
    if (S.route.tab !== "params" || !pane || !pane.querySelector("#importance")) return;
    // The slices and the axes follow the importance order: only a new order redraws them.
    if (importanceOrder() === before) renderImportance(pane.querySelector("#importance"));
    else renderParams(pane, true, true);
  } catch (e) { banner(e.message); }
}

function paramsTabShown() {
  const pane = document.getElementById("tab");
  return S.exp && S.route.view === "exp" && S.route.tab === "params" && pane && pane.dataset.tab === "params" ? pane : null;
}

function renderParams(pane, changed, now) {
  if (!changed && pane.childElementCount) return;
  const wait = S.paramsDrawnAt + S.paramsEveryMs - performance.now();
  if (!now && pane.querySelector("#importance") && wait > 0) {
    // Drawn a moment ago: draw once more when the interval is over, with what came by then.
    if (S.paramsTimer == null) S.paramsTimer = setTimeout(() => {
      S.paramsTimer = null;
      const shown = paramsTabShown();
      if (shown) renderParams(shown, true);
    }, wait);
    return;
  }
  clearTimeout(S.paramsTimer);
  S.paramsTimer = null;
  S.paramsDrawnAt = performance.now();
  S.paramsDraws += 1;
  if (S.importanceFor !== S.exp.version) loadImportance();
  const meta = paramMeta();
  const order = S.importance ? S.importance.map(i => i.label) : meta.map(m => m.label);
  const byLabel = Object.fromEntries(meta.map(m => [m.label, m]));
  let imp = pane.querySelector("#importance"), slices = pane.querySelector("#slices"),
    pc = pane.querySelector("#parcoords");
  if (!imp) {
    imp = h("div", {id: "importance", class: "panel"});
    pc = h("div", {class: "panel"}, h("h3", {}, "Parallel coordinates"),
      h("p", {class: "muted"}, "one line per trial with a loss; darker is better"),
      h("canvas", {class: "pc", id: "parcoords"}));
    slices = h("div", {id: "slices", class: "grid"});
    pane.replaceChildren(imp, h("h3", {}, "Slices: loss against each parameter"), slices, pc);
    pc = pane.querySelector("#parcoords");
  }
  renderImportance(imp);
  // slices
  const done = [...S.exp.trials.values()].filter(t => t.state === "done" && t.loss != null);
  const logY = done.length > 0 && done.every(t => t.loss > 0) && suggestLog(done.map(t => t.loss));
  const labels = order.filter(l => byLabel[l]).slice(0, MAX_SLICES);
  for (const label of labels) {
    const m = byLabel[label];
    const pts = done.filter(t => typeof t[label] === "number").map(t => [t[label], t.loss])
      .sort((a, b) => a[0] - b[0]);
    const logX = m.log && pts.length > 0 && pts[0][0] > 0;
    let cell = slices.querySelector(`[data-slice="${CSS.escape(label)}"]`);
    if (!cell) { cell = h("div", {class: "panel", "data-slice": label}, h("h3", {}, label), h("div", {})); slices.append(cell); }
    const key = `slice:${label}`;
    const data = [pts.map(p => p[0]), pts.map(p => p[1])];
    let p = S.plots[key];
    if (!p || p._logY !== logY) {
      if (p) p.destroy();
      const axX = {label: m.choice ? "option" : label};
      let scX = logScale(logX, {time: false});
      if (m.choice && m.options.length) {
        const n = m.options.length;
        scX = {time: false, distr: 1, range: () => [-0.5, n - 0.5]};
        axX.splits = () => [...Array(n).keys()];
        axX.values = (u, splits) => splits.map(v => (m.options[v] ?? "").slice(0, 14));
      } else {
        axX.values = ticks;
      }
      cell.lastChild.replaceChildren();
      p = new uPlot({width: 340, height: 220, legend: {show: false}, scales: {x: scX, y: logScale(logY)},
        series: [{}, {stroke: "#2f6fd6", paths: () => null, points: {show: false}}],
        axes: [m.choice ? axX : logAxis(logX, axX), logAxis(logY, {size: 60, values: ticks})],
        hooks: {drawSeries: [dots(1, DOT)]}}, data, cell.lastChild);
      p._logY = logY;
      S.plots[key] = p;
    } else p.setData(data);
  }
  drawParallel(pc, done, order.filter(l => byLabel[l]).slice(0, MAX_AXES), byLabel);
}

function renderImportance(imp) {
  const rows = (S.importance || []).map(i => h("tr", {"data-param": i.label},
    h("td", {}, i.label), h("td", {class: "num"}, i.score == null ? "–" : i.score.toFixed(3)),
    h("td", {style: "width:50%"}, h("div", {class: "bar", style: `width:${Math.round(100 * (i.score || 0))}%`})),
    h("td", {class: "muted"}, `${i.trials} trials, ${i.groups} groups`)));
  imp.replaceChildren(h("h3", {}, "Importance"),
    h("p", {class: "muted"}, "Share of the variance of the loss ranking that the parameter alone explains " +
      "(bias-adjusted correlation ratio over up to 10 groups of its values): 0 = no visible effect, 1 = orders the trials alone. " +
      "One parameter at a time: interactions are not credited."),
    S.importance ? h("table", {class: "imp"}, h("tbody", {}, rows)) : h("p", {class: "muted"}, "computing…"));
}

function lossColor(frac) {
  // frac 0 = best (dark blue) .. 1 = worst (light yellow-grey)
  const a = [22, 50, 120], b = [226, 214, 160];
  const c = a.map((x, i) => Math.round(x + (b[i] - x) * frac));
  return `rgba(${c[0]},${c[1]},${c[2]},0.35)`;
}

function axisScale(values, log) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { const w = log ? Math.log(v) : v; if (isFinite(w)) { lo = Math.min(lo, w); hi = Math.max(hi, w); } }
  if (!isFinite(lo)) return () => null;
  const span = hi - lo || 1;
  return v => { if (typeof v !== "number") return null; const w = log ? Math.log(v) : v; return isFinite(w) ? (w - lo) / span : null; };
}

function drawParallel(canvas, done, labels, byLabel) {
  const dpr = window.devicePixelRatio || 1;
  const W = canvas.clientWidth || 900, H = canvas.clientHeight || 360;
  canvas.width = W * dpr; canvas.height = H * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, W, H);
  const axes = [...labels, "loss"];
  const logLoss = done.length > 0 && done.every(t => t.loss > 0) && suggestLog(done.map(t => t.loss));
  const scales = axes.map(l => l === "loss" ? axisScale(done.map(t => t.loss), logLoss)
    : byLabel[l].choice ? (v => typeof v === "number" ? (byLabel[l].options.length > 1 ? v / (byLabel[l].options.length - 1) : 0.5) : null)
    : axisScale(done.map(t => t[l]).filter(v => typeof v === "number"), byLabel[l].log));
  const top = 28, bottom = H - 22, left = 40, right = W - 60;
  const x = i => left + (axes.length > 1 ? i * (right - left) / (axes.length - 1) : 0);
  const y = f => bottom - f * (bottom - top);
  const ranked = [...done].sort((a, b) => b.loss - a.loss);  // worst first: best drawn on top
  g.lineWidth = 1;
  // One path per shade, not per trial: 20,000 strokes would take the browser seconds.
  const xs = axes.map((l, i) => x(i));
  for (let shade = 0; shade < PC_SHADES; shade++) {
    const from = Math.floor(shade * ranked.length / PC_SHADES), to = Math.floor((shade + 1) * ranked.length / PC_SHADES);
    if (from >= to) continue;
    g.strokeStyle = lossColor(1 - (shade + 0.5) / PC_SHADES);
    g.beginPath();
    for (let r = from; r < to; r++) {
      const t = ranked[r];
      let pen = false;
      for (let i = 0; i < axes.length; i++) {
        const f = scales[i](t[axes[i]]);
        if (f == null) { pen = false; continue; }
        if (pen) g.lineTo(xs[i], y(f)); else { g.moveTo(xs[i], y(f)); pen = true; }
      }
    }
    g.stroke();
  }
  g.strokeStyle = "#555"; g.fillStyle = "#1d2330"; g.font = "12px system-ui, sans-serif"; g.textAlign = "center";
  axes.forEach((l, i) => {
    g.beginPath(); g.moveTo(x(i), top); g.lineTo(x(i), bottom); g.stroke();
    g.fillText(l, x(i), top - 10);
  });
  canvas.dataset.lines = String(ranked.length);
  canvas.dataset.axes = axes.join(",");
}

// ---- trials table ------------------------------------------------------------------------------

function exportColumns() {
  const cols = new Set(["tid", "state", "loss", "step", "duration_s", "worker", "attempts"]);
  for (const m of paramMeta()) { cols.add(m.label); if (m.choice) cols.add(`${m.label}_value`); }
  return [...cols];
}

function filtered() {
  const f = S.filter;
  const lo = f.lossMin === "" ? -Infinity : Number(f.lossMin);
  const hi = f.lossMax === "" ? Infinity : Number(f.lossMax);
  const out = [];
  for (const t of S.exp.trials.values()) {
    if (f.state && t.state !== f.state) continue;
    if (f.worker && t.worker !== f.worker) continue;  // a worker's name, as parzen trials --worker
    if ((f.lossMin !== "" || f.lossMax !== "") && (t.loss == null || t.loss < lo || t.loss > hi)) continue;
    out.push(t);
  }
  const {col, desc} = S.sort;
  const sign = desc ? -1 : 1;
  out.sort((a, b) => {
    const x = a[col], y = b[col];
    if (x == null && y == null) return a.tid - b.tid;
    if (x == null) return 1;        // empty cells last, either way
    if (y == null) return -1;
    if (x < y) return -sign;
    if (x > y) return sign;
    return a.tid - b.tid;
  });
  return out;
}

function ticks(u, splits) { return splits.map(v => v == null ? "" : num(v, 3)); }

function cellTd(v) {
  const text = cellText(v);
  return h("td", {class: typeof v === "number" ? "num" : "", title: text.length > 40 ? text : null},
    text.length > 40 ? `${text.slice(0, 39)}…` : text);
}

function cellText(v) {
  if (v == null) return "";
  if (typeof v === "number") return num(v);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function renderTrials(pane, changed) {
  const cols = exportColumns();
  let box = pane.querySelector("#trials");
  if (!box) {
    const workers = () => [...new Set([...S.exp.trials.values()].map(t => t.worker).filter(Boolean))].sort();
    const onF = (k) => e => { S.filter[k] = e.target.value; renderTrials(pane, true); };
    box = h("div", {id: "trials"},
      h("div", {class: "controls"},
        h("label", {}, "state ", h("select", {id: "f-state", onchange: onF("state")},
          h("option", {value: ""}, "any"), STATES.concat(["pruned"]).map(s => h("option", {value: s}, s)))),
        h("label", {}, "worker ", h("select", {id: "f-worker", onchange: onF("worker"), onfocus: e => {
          const sel = e.target, cur = sel.value;
          sel.replaceChildren(h("option", {value: ""}, "any"), workers().map(w => h("option", {value: w}, w)));
          sel.value = cur; }}, h("option", {value: ""}, "any"))),
        h("label", {}, "loss from ", h("input", {type: "number", step: "any", id: "f-lo", oninput: onF("lossMin")})),
        h("label", {}, "to ", h("input", {type: "number", step: "any", id: "f-hi", oninput: onF("lossMax")})),
        h("button", {id: "export", onclick: exportCsv}, "Export CSV"),
        h("span", {id: "trial-count", class: "muted"})),
      h("div", {class: "scroll", id: "trial-scroll", onscroll: () => drawRows()},
        h("table", {id: "trial-table"}, h("thead", {}), h("tbody", {}))));
    pane.replaceChildren(box);
  }
  const thead = box.querySelector("thead");
  thead.replaceChildren(h("tr", {}, cols.map(c => h("th", {class: ["tid", "loss", "step", "duration_s", "attempts"].includes(c) ? "num click" : "click",
    style: "cursor:pointer", "data-col": c, onclick: () => {
      S.sort = {col: c, desc: S.sort.col === c ? !S.sort.desc : false}; renderTrials(pane, true); }},
    c, S.sort.col === c ? (S.sort.desc ? " ▼" : " ▲") : ""))));
  S.rows = filtered();
  box.querySelector("#trial-count").textContent = `${S.rows.length} of ${S.exp.trials.size} trials`;
  drawRows();
}

function drawRows() {
  const scroll = document.getElementById("trial-scroll");
  if (!scroll || !S.rows) return;
  const cols = exportColumns();
  const tbody = scroll.querySelector("tbody");
  const height = Math.max(scroll.clientHeight, 600);  // before layout it is the header's
  const first = Math.max(0, Math.floor(scroll.scrollTop / ROW_H) - 10);
  const last = Math.min(S.rows.length, first + Math.ceil(height / ROW_H) + 20);
  const pad = (n) => h("tr", {style: `height:${n * ROW_H}px`}, h("td", {colspan: cols.length, style: "padding:0;border:none"}));
  const rows = S.rows.slice(first, last).map(t => h("tr", {class: "click", "data-tid": t.tid, style: `height:${ROW_H}px`,
    onclick: () => openTrial(t.tid)},
    cols.map(c => c === "state" ? h("td", {}, stateBadge(t.state))
      : cellTd(t[c]))));
  tbody.replaceChildren(pad(first), ...rows, pad(S.rows.length - last));
}

function csvCell(v) {
  if (v == null) return "";
  const s = typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function exportCsv() {
  // The columns of `parzen trials --format csv`; the rows shown (filters and order applied).
  const cols = exportColumns();
  const lines = [cols.join(",")].concat(S.rows.map(t => cols.map(c => csvCell(t[c])).join(",")));
  const blob = new Blob([lines.join("\n") + "\n"], {type: "text/csv"});
  const a = h("a", {href: URL.createObjectURL(blob), download: `${S.exp.key}-trials.csv`});
  document.body.append(a); a.click(); a.remove();
}

// ---- trial detail ------------------------------------------------------------------------------

async function openTrial(tid) {
  const panel = document.getElementById("detail");
  panel.hidden = false;
  panel.replaceChildren(h("p", {class: "muted"}, `trial ${tid}…`));
  try {
    const d = await api(`exp/${encodeURIComponent(S.exp.key)}/trial/${tid}`);
    const r = d.row;
    panel.replaceChildren(
      h("button", {class: "close", onclick: closeDetail}, "close"),
      h("h2", {}, `trial ${tid} `, stateBadge(r.state)),
      h("p", {}, `loss ${num(r.loss)} · ${dur(r.duration_s)} · attempt ${r.attempts}` +
        (d.owner ? ` · ${d.owner.worker}${d.owner.slot != null ? ` slot ${d.owner.slot}` : ""} (pid ${d.owner.pid} on ${d.owner.host})` : "")),
      d.error ? [h("h3", {}, `${d.error.type}: ${d.error.message}`),
        h("pre", {id: "traceback"}, d.error.traceback || "(no traceback recorded: the worker died or its lease expired)")] : null,
      h("h3", {}, "parameters"), h("pre", {}, JSON.stringify(d.params, null, 2)),
      h("h3", {}, "result"), h("pre", {}, JSON.stringify(d.result, null, 2)),
      d.history.length ? [h("h3", {}, "earlier attempts"), h("table", {}, h("tbody", {},
        d.history.map(a => h("tr", {}, h("td", {}, a.attempt), h("td", {}, a.worker || "–"), h("td", {}, a.outcome)))))] : null);
  } catch (e) { panel.replaceChildren(h("button", {class: "close", onclick: closeDetail}, "close"), h("p", {}, e.message)); }
}

function closeDetail() { document.getElementById("detail").hidden = true; }

// ---- errors ------------------------------------------------------------------------------------

async function renderErrors(pane, changed) {
  const failed = S.exp.summary.counts.error || 0;
  if (S.errorsFor === failed && pane.childElementCount) return;
  S.errorsFor = failed;
  if (!failed) { pane.replaceChildren(h("p", {id: "errors", class: "muted"}, "no failed trials")); return; }
  try {
    const {groups} = await api(`exp/${encodeURIComponent(S.exp.key)}/errors`);
    pane.replaceChildren(h("div", {id: "errors"}, groups.map(g => h("div", {class: "group", "data-type": g.type},
      h("h3", {}, `${g.type}: ${g.count} trial${g.count > 1 ? "s" : ""}`),
      h("table", {}, h("tbody", {}, g.messages.slice(0, 8).map(m => h("tr", {},
        h("td", {class: "num"}, `${m.count} ×`), h("td", {}, m.message || "(no message)", m.distinct > 1 ? h("span", {class: "muted"}, " (and similar)") : null))))),
      h("details", {}, h("summary", {}, `traceback of trial ${g.example_tid}`),
        h("pre", {}, g.traceback || "(no traceback recorded: the worker died or its lease expired)")),
      h("p", {class: "muted"}, "trials: ", g.tids.slice(0, 40).map(tid => [h("a", {href: "javascript:void 0",
        onclick: () => openTrial(tid)}, tid), " "]), g.tids.length > 40 ? `… ${g.tids.length - 40} more` : "")))));
  } catch (e) { banner(e.message); }
}

// ---- workers -----------------------------------------------------------------------------------

function renderWorkers(pane) {
  const W = S.exp.workers, now = S.exp.summary.now;
  // The state is parzen status's (beating, idle, stale, dead), decided by the server.
  const mark = w => w.state === "stale"
    ? h("span", {class: "stale", title: `no heartbeat for ${dur(w.silent_s)} (heartbeat every ${W.heartbeat_s}s)`}, "STALE")
    : w.state === "dead" ? h("span", {class: "stale", title: "its process has exited: its trials are requeued without waiting for their lease"}, "DEAD")
    : w.state === "beating" ? h("span", {class: "alive"}, "beating") : h("span", {class: "muted"}, w.state);
  const rows = W.workers.map(w => h("tr", {"data-worker": w.worker, "data-state": w.state},
    h("td", {}, w.worker), h("td", {}, w.host), h("td", {class: "num busy"}, w.busy),
    h("td", {}, w.held.map(t => h("span", {title: (t.slot != null ? `slot ${t.slot}, ` : "") + `attempt ${t.attempt}` + (t.expired ? ", lease expired" : "")},
      t.expired ? h("s", {}, t.tid) : t.tid, " "))),
    h("td", {}, ago(w.last_beat, now)), h("td", {}, ago(w.last_seen, now)),
    h("td", {class: "num"}, w.finished_recently),
    h("td", {}, mark(w))));
  pane.replaceChildren(
    h("p", {class: "muted"}, `Workers holding trials, or that finished one in the last ${dur(W.window_s)}. ` +
      `STALE: holds trials and has not been seen for more than ${dur(W.stale_after_s)} (two heartbeat intervals); ` +
      "DEAD: its process has exited (seen from this host). As parzen status marks them."),
    W.workers.length ? h("table", {id: "workers"}, h("thead", {}, h("tr", {}, ["worker", "host", "slots busy", "trials held",
      "last heartbeat", "last seen", "finished (window)", "status"].map(c => h("th", {}, c)))), h("tbody", {}, rows))
      : h("p", {id: "workers", class: "muted"}, "no worker has held a trial recently"),
    W.expired.length ? h("p", {class: "dead"}, `expired leases: trials ${W.expired.join(", ")} ` +
      (S.exp.summary.coordinator.alive ? "(the coordinator requeues them on its next pass)" : "(no coordinator: parzen requeue --expired)")) : null);
}

// ---- learning curves (issue 20 hook) ---------------------------------------------------------------

function renderCurves(pane) {
  const withCurve = [...S.exp.trials.values()].filter(t => Array.isArray(t._curve) && t._curve.length);
  if (!withCurve.length) {
    pane.replaceChildren(h("div", {class: "hook", id: "curves"},
      h("p", {}, "No trial of this experiment reported intermediate values."),
      h("p", {class: "muted"}, "Learning curves (loss against step, pruned trials in grey) show here for trials " +
        "that report intermediate values, once pruning stores them (issue 20).")));
    return;
  }
  let canvas = pane.querySelector("canvas");
  if (!canvas) { canvas = h("canvas", {class: "pc", id: "curves"}); pane.replaceChildren(canvas); }
  const dpr = window.devicePixelRatio || 1, W = canvas.clientWidth || 900, H = canvas.clientHeight || 360;
  canvas.width = W * dpr; canvas.height = H * dpr;
  const g = canvas.getContext("2d"); g.scale(dpr, dpr); g.clearRect(0, 0, W, H);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const t of withCurve) for (const [s, v] of t._curve) { x0 = Math.min(x0, s); x1 = Math.max(x1, s); y0 = Math.min(y0, v); y1 = Math.max(y1, v); }
  const X = s => 50 + (s - x0) / ((x1 - x0) || 1) * (W - 70), Y = v => H - 25 - (v - y0) / ((y1 - y0) || 1) * (H - 45);
  for (const t of withCurve) {
    g.strokeStyle = t.state === "pruned" ? "rgba(140,140,140,.5)" : "rgba(47,111,214,.7)";
    g.beginPath(); t._curve.forEach(([s, v], i) => i ? g.lineTo(X(s), Y(v)) : g.moveTo(X(s), Y(v))); g.stroke();
  }
  g.fillStyle = "#1d2330"; g.font = "12px system-ui, sans-serif";
  g.fillText(`step ${num(x0)} … ${num(x1)}`, 50, H - 6); g.fillText(`value ${num(y0)} … ${num(y1)}`, 50, 14);
  canvas.dataset.curves = String(withCurve.length);
}

// ---- start -------------------------------------------------------------------------------------------

async function start() {
  // A token that came in the URL is now in an HttpOnly cookie: take it out of the address bar.
  if (location.search.includes("token=")) history.replaceState(null, "", `/${location.hash}`);
  try { S.config = await api("config"); }
  catch (e) { banner(e.message); document.getElementById("main").replaceChildren(); return; }
  document.getElementById("where").textContent = S.config.where;
  window.addEventListener("hashchange", go);
  window.addEventListener("keydown", e => { if (e.key === "Escape") closeDetail(); });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && S.dirty && S.exp && S.route.view === "exp") renderExperiment(true);
  });
  go();
}

start();
