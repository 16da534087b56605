// The dashboard page: polls the JSON view models of /api/* and draws them (SVG, no framework).
const $ = (sel) => document.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2563c9", "#d6336c", "#2e8b57", "#d68a00", "#7048e8", "#0c8599", "#868e96"];
const state = { view: "graph", selected: null, service: null, trace: null, refresh: 5, timer: null };

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}
const fmt = (v, digits = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
const ms = (v) => (v === null || v === undefined ? "–" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 2 : 1)} ms`);
const short = (host) => host.split(".")[0];

async function api(path) {
  const response = await fetch(path);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${path}: ${response.status}`);
  return body;
}

function showError(err) {
  const box = $("#error");
  box.hidden = !err;
  box.textContent = err ? String(err.message || err) : "";
  $("#live").classList.toggle("stale", !!err);
}

// ---------------------------------------------------------------- graph
function edgeLabel(e) {
  const parts = [`${fmt(e.rps)} rps`];
  parts.push(`${fmt(e.error_pct, 1)}% err`);
  if (e.p99_ms !== null) parts.push(`p99 ${ms(e.p99_ms)}`);
  return parts.join(" · ");
}

function drawGraph(g) {
  const svg = $("#graph");
  svg.replaceChildren();
  $("#graph-empty").hidden = g.nodes.length > 0;
  const W = 150, H = 44;
  // Scaled to the pane: the layout's units are pixels at full size, never larger.
  svg.setAttribute("viewBox", `0 0 ${Math.max(g.width, 300)} ${Math.max(g.height, 200)}`);
  svg.setAttribute("width", "100%");
  svg.style.maxWidth = `${Math.max(g.width, 300)}px`;
  svg.append(el("svg:defs", {},
    ["healthy", "degraded", "failing"].map((h) => el("svg:marker", { id: `arrow-${h}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
      el("svg:path", { d: "M0,0 L10,5 L0,10 z", fill: h === "healthy" ? "#8a96a8" : h === "degraded" ? "#d68a00" : "#d0342c" })))));
  for (const grp of g.groups) {
    svg.append(el("svg:g", { class: "group" },
      el("svg:rect", { x: grp.x, y: grp.y, width: grp.width, height: grp.height, rx: 10 }),
      el("svg:text", { x: grp.x + 12, y: grp.y + 18 }, grp.app)));
  }
  const pos = Object.fromEntries(g.nodes.map((n) => [n.id, n]));
  const maxRps = Math.max(0.001, ...g.edges.map((e) => e.rps));
  for (const e of g.edges) {
    const a = pos[e.source], b = pos[e.target];
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const back = x2 <= x1;
    const d = back
      ? `M${a.x + W / 2},${a.y + H} C${a.x + W / 2},${a.y + H + 50} ${b.x + W / 2},${b.y + H + 50} ${b.x + W / 2},${b.y + H}`
      : `M${x1},${y1} C${x1 + 55},${y1} ${x2 - 55},${y2} ${x2 - 2},${y2}`;
    // Fan-out labels sit near their target, fan-in labels near their source: never on top of
    // each other where the curves bunch up.
    const nearSource = g.edges.filter((o) => o.target === e.target).length > 1;
    const mx = back ? (a.x + b.x) / 2 + W / 2 : nearSource ? x1 + 8 : x2 - 12;
    const my = back ? Math.max(a.y, b.y) + H + 40 : (nearSource ? y1 : y2) - 6;
    const anchor = back ? "middle" : nearSource ? "start" : "end";
    svg.append(el("svg:g", { class: `edge ${e.health}`, "data-source": e.source, "data-target": e.target },
      el("svg:path", { d, "stroke-width": 1.2 + 3.5 * (e.rps / maxRps), "marker-end": `url(#arrow-${e.health})` }),
      el("svg:text", { x: mx, y: my, "text-anchor": anchor }, edgeLabel(e))));
  }
  for (const n of g.nodes) {
    const cls = `node ${n.health}${state.selected === n.id ? " selected" : ""}`;
    svg.append(el("svg:g", { class: cls, "data-node": n.id, onclick: () => { state.selected = n.id; drawGraph(g); } },
      el("svg:rect", { x: n.x, y: n.y, width: W, height: H, rx: 7 }),
      el("svg:text", { x: n.x + 10, y: n.y + 18 }, n.workload),
      el("svg:text", { x: n.x + 10, y: n.y + 34, class: "ver" }, n.version ? `${n.version} · ${fmt(n.rps_in)} rps in` : `${fmt(n.rps_out)} rps out`)));
  }
  drawNodeDetail(g);
}

function drawNodeDetail(g) {
  const box = $("#node-detail");
  const n = g.nodes.find((x) => x.id === state.selected);
  box.hidden = !n;
  if (!n) return;
  const edgeRows = (list, key) => list.map((e) => el("tr", {}, el("td", {}, e[key].split("/")[1]), el("td", { class: "num" }, fmt(e.rps)),
    el("td", { class: "num" }, `${fmt(e.error_pct, 1)}%`), el("td", { class: "num" }, ms(e.p99_ms))));
  const head = el("tr", {}, el("th", {}, "workload"), el("th", { class: "num" }, "rps"), el("th", { class: "num" }, "errors"), el("th", { class: "num" }, "p99"));
  const badge = n.health === "healthy" ? "badge" : n.health === "degraded" ? "badge warn" : "badge bad";
  box.replaceChildren(
    el("h2", {}, n.workload), el("div", { class: "muted" }, `${n.namespace} · app ${n.app} · version ${n.version || "–"}`),
    el("p", {}, el("span", { class: badge }, n.health), `  ${fmt(n.rps_in)} rps in · ${fmt(n.rps_out)} rps out · ${n.error_pct === null ? "–" : fmt(n.error_pct, 1) + "%"} errors`),
    el("h3", {}, "Called by"), el("table", {}, head.cloneNode(true), edgeRows(g.edges.filter((e) => e.target === n.id), "source")),
    el("h3", {}, "Calls"), el("table", {}, head, edgeRows(g.edges.filter((e) => e.source === n.id), "target")));
}

// ---------------------------------------------------------------- service
function lineChart(title, rows, field, unit, options = {}) {
  const W = 420, H = 170, L = 44, B = 22, T = 8;
  const series = options.multi ? rows.flatMap((r, i) => options.multi.map((f, j) => ({ name: `${r.version} ${f}`, points: r[f], color: COLORS[i % COLORS.length], dash: ["", "5 3", "2 2"][j] })))
    : rows.map((r, i) => ({ name: r.version, points: r[field], color: COLORS[i % COLORS.length], dash: "" }));
  const all = series.flatMap((s) => s.points.filter((p) => p[1] !== null));
  const svg = el("svg:svg", { class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  if (!all.length) return el("div", { class: "card" }, el("h3", {}, title), el("p", { class: "empty" }, "no data"));
  // Loops, not Math.min(...spread): a long range has more points than a call has arguments.
  let t0 = Infinity, t1 = -Infinity, vlo = Infinity, vhi = -Infinity;
  for (const [t, v] of all) { t0 = Math.min(t0, t); t1 = Math.max(t1, t); vlo = Math.min(vlo, v); vhi = Math.max(vhi, v); }
  let lo = options.min ?? vlo, hi = vhi;
  if (options.limit !== undefined) { lo = Math.min(lo, options.limit); hi = Math.max(hi, options.limit); }
  if (options.min === undefined) lo = Math.min(lo, 0);
  if (hi - lo < 1e-9) hi = lo + 1;
  const x = (t) => L + ((t - t0) / Math.max(t1 - t0, 1)) * (W - L - 8), y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  svg.append(el("svg:line", { class: "axis", x1: L, y1: H - B, x2: W - 8, y2: H - B }), el("svg:line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  for (const v of [lo, (lo + hi) / 2, hi]) svg.append(el("svg:text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" }, fmt(v, hi < 10 ? 2 : 0)));
  const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  svg.append(el("svg:text", { x: L, y: H - 6 }, clock(t0)), el("svg:text", { x: W - 8, y: H - 6, "text-anchor": "end" }, clock(t1)));
  if (options.limit !== undefined) {
    svg.append(el("svg:line", { class: "limit", x1: L, x2: W - 8, y1: y(options.limit), y2: y(options.limit) }),
      el("svg:text", { class: "limit", x: W - 10, y: y(options.limit) + (y(options.limit) < T + 12 ? 11 : -3), "text-anchor": "end" }, `limit ${options.limit}`));
  }
  for (const s of series) {
    let d = "", pen = false;
    for (const [t, v] of s.points) {
      if (v === null) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`; pen = true;
    }
    const known = s.points.filter((p) => p[1] !== null);
    if (d) svg.append(el("svg:path", { d, stroke: s.color, "stroke-dasharray": s.dash || null, "data-points": known.length }));
    // A young series has too few points for a line to show: mark each one.
    if (known.length && known.length <= 12) for (const [t, v] of known) svg.append(el("svg:circle", { cx: x(t), cy: y(v), r: 2.5, fill: s.color }));
  }
  const legend = el("div", { class: "legend" }, series.map((s) => el("span", {}, el("i", { style: `background:${s.color}` }), s.name)));
  return el("div", { class: "card" }, el("h3", {}, `${title}${unit ? ` (${unit})` : ""}`), svg, legend);
}

function drawService(view) {
  const body = $("#service-body");
  if (!view.versions.length) { body.replaceChildren(el("p", { class: "empty" }, "No requests to this service in the chart's range.")); return; }
  const split = el("div", { class: "split", "data-testid": "traffic-split" }, view.versions.map((r, i) =>
    el("div", { style: `width:${r.share_pct}%;background:${COLORS[i % COLORS.length]}`, title: `${r.version} ${fmt(r.share_pct, 1)}%` }, `${r.version} ${fmt(r.share_pct, 0)}%`)));
  const table = el("table", { "data-testid": "versions" },
    el("tr", {}, ["version", "traffic", "rps", "success", "p50", "p90", "p99"].map((h, i) => el("th", { class: i ? "num" : null }, h))),
    view.versions.map((r) => el("tr", {}, el("td", {}, r.version), el("td", { class: "num" }, `${fmt(r.share_pct, 1)}%`),
      el("td", { class: "num" }, fmt(r.latest.rps)), el("td", { class: "num" }, r.latest.success === null ? "–" : `${fmt(r.latest.success, 2)}%`),
      el("td", { class: "num" }, ms(r.latest.p50)), el("td", { class: "num" }, ms(r.latest.p90)), el("td", { class: "num" }, ms(r.latest.p99)))));
  body.replaceChildren(
    el("div", { class: "card" }, el("h3", {}, `${view.service} · traffic split (latest ${view.window})`), split, table),
    el("div", { class: "cards", style: "margin-top:14px" },
      lineChart("Requests per second", view.versions, "rps", "rps"),
      lineChart("Success rate", view.versions, "success", "%", { min: undefined }),
      lineChart("Latency p50 / p90 / p99", view.versions, null, "ms", { multi: ["p50", "p90", "p99"] })));
}

async function loadServices() {
  const { services } = await api(`/api/services?window=${$("#window").value}`);
  const pick = $("#service-pick");
  const current = state.service || services.find((s) => s.startsWith("reviews.")) || services[0] || "";
  pick.replaceChildren(...services.map((s) => el("option", { value: s, selected: s === current }, s)));
  state.service = current || null;
}

// ---------------------------------------------------------------- config
function drawConfig(view) {
  const status = (s) => el("span", { class: s === "SYNCED" ? "badge" : s === "NACKED" ? "badge bad" : "badge warn" }, s);
  const proxies = el("table", { "data-testid": "proxies" },
    el("tr", {}, ["proxy", "namespace", "status", "CDS", "EDS", "LDS", "RDS", "SDS", "rejected config"].map((h) => el("th", {}, h))),
    view.proxies.map((p) => el("tr", {}, el("td", {}, p.name), el("td", {}, p.namespace), el("td", {}, status(p.status)),
      ["Cluster", "ClusterLoadAssignment", "Listener", "RouteConfiguration", "Secret"].map((t) => el("td", { class: "muted" }, p.types[t] || "–")),
      el("td", { class: "error" }, Object.entries(p.errors).map(([t, e]) => `${t}: ${e}`).join("\n")))));
  const level = (l) => el("span", { class: l === "error" ? "badge bad" : "badge warn" }, l);
  const findings = view.findings.length ? el("table", { "data-testid": "findings" },
    el("tr", {}, ["code", "level", "resource", "field", "reason"].map((h) => el("th", {}, h))),
    view.findings.map((f) => el("tr", {}, el("td", {}, f.istio_code ? `${f.code} [${f.istio_code}]` : f.code), el("td", {}, level(f.level)), el("td", {}, f.resource), el("td", {}, f.field), el("td", {}, f.reason))))
    : el("p", { class: "muted", "data-testid": "findings" }, "canarymesh analyze finds no problem in the applied configuration.");
  const resources = el("table", { "data-testid": "resources" },
    el("tr", {}, ["kind", "namespace", "name"].map((h) => el("th", {}, h))),
    view.resources.map((r) => el("tr", {}, el("td", {}, r.kind), el("td", {}, r.namespace), el("td", {}, r.name))));
  $("#config-body").replaceChildren(
    el("div", { class: "card" }, el("h3", {}, `Proxy status · ${view.proxies.length} proxies, ${view.nacked} rejecting their config`), proxies),
    el("div", { class: "card", style: "margin-top:14px" }, el("h3", {}, `Analysis · ${view.findings.length} findings`), findings),
    el("div", { class: "card", style: "margin-top:14px" }, el("h3", {}, `Applied resources · ${view.resources.length}`), resources));
}

// ---------------------------------------------------------------- traces
function traceQuery() {
  const form = new FormData($("#trace-search"));
  const params = new URLSearchParams();
  for (const [k, v] of form.entries()) if (v) params.set(k, v);
  return params.toString();
}

// A trace still receiving spans (proxies send them in batches) or missing some for good.
const TRACE_STATES = { receiving: ["badge muted", "receiving spans…"], partial: ["badge warn", "partial"] };
function traceState(state) {
  const [cls, text] = TRACE_STATES[state] || [];
  return cls ? el("span", { class: cls, title: state === "partial" ? "some spans never arrived" : "spans are still arriving" }, text) : "";
}

async function loadTraces() {
  const [{ services }, { traces }] = await Promise.all([api("/api/trace-services"), api(`/api/traces?${traceQuery()}`)]);
  const pick = $("#trace-service"), chosen = pick.value;
  pick.replaceChildren(el("option", { value: "" }, "any"), ...services.map((s) => el("option", { value: s, selected: s === chosen }, s)));
  const longest = Math.max(1, ...traces.map((t) => t.duration_ms));
  $("#trace-list").replaceChildren(...(traces.length ? traces.map((t) => el("div", {
    class: `trace${t.errors ? " err" : ""}${state.trace === t.trace_id ? " selected" : ""}`, "data-trace": t.trace_id, "data-state": t.state,
    onclick: () => { state.trace = t.trace_id; loadTraces().catch(showError); } },
  el("div", {}, el("b", {}, `${t.root_service}: ${t.root_request || t.root_operation}`), el("span", { class: "muted", style: "float:right" }, ms(t.duration_ms))),
  el("div", { class: "muted" }, `${t.spans} spans · ${t.services.length} services${t.errors ? ` · ${t.errors} errors` : ""} · ${new Date(t.start_us / 1000).toLocaleTimeString()} `, traceState(t.state)),
  el("div", { class: "bar", style: `width:${(100 * t.duration_ms) / longest}%` }))) : [el("p", { class: "empty" }, "No trace matches.")]));
  if (!traces.length) $("#waterfall").replaceChildren();
  if (!state.trace && traces.length) state.trace = traces[0].trace_id;
  if (state.trace) drawWaterfall(await api(`/api/trace/${state.trace}`));
}

function durationLabel(r, total) {
  const end = (100 * (r.offset_ms + r.duration_ms)) / total;
  // Near the right edge the label goes inside its bar, in white.
  const style = end > 85 ? `left:calc(${end}% - 4px);transform:translateX(-100%);color:#fff` : `left:calc(${end}% + 4px)`;
  return el("span", { class: "dur", style }, ms(r.duration_ms));
}

function drawWaterfall(wf) {
  const total = Math.max(wf.duration_ms, 0.001);
  const rows = wf.rows.map((r) => el("div", { class: "wf-row", "data-span": r.span_id, "data-parent": r.parent_id || "", "data-service": r.service, "data-depth": r.depth },
    el("div", { class: "label", style: `padding-left:${r.depth * 14}px`, title: Object.entries(r.tags).map(([k, v]) => `${k}: ${v}`).join("\n") },
      el("b", {}, r.service), " ", el("span", { class: "muted" }, `${r.kind.toLowerCase()} ${r.request || r.operation}${r.status ? ` · ${r.status}` : ""}`)),
    el("div", { class: "track" },
      el("div", { class: `span ${r.kind}${r.error ? " err" : ""}`, style: `left:${(100 * r.offset_ms) / total}%;width:${(100 * r.duration_ms) / total}%` }),
      durationLabel(r, total))));
  $("#waterfall").replaceChildren(el("div", { class: "wf", "data-state": wf.state },
    el("h3", { style: "margin:0 0 8px" }, `Trace ${wf.trace_id.slice(0, 16)}… · ${ms(wf.duration_ms)} · ${wf.rows.length} spans `, traceState(wf.state)), rows));
}

// ---------------------------------------------------------------- rollouts
const TERMINAL = ["Succeeded", "Failed"];
const phaseClass = (p) => (p === "Succeeded" ? "badge" : p === "Failed" || p === "RollingBack" ? "badge bad" : p === "Paused" ? "badge warn" : "badge blue");

function limitOf(r, metric) {
  // "min 99" / "max 500" of a threshold check; a statistical judge has no fixed line to draw.
  const found = r.metrics.find((m) => m.metric === metric)?.limit.match(/(?:min|max) ([0-9.]+)/);
  return found ? Number(found[1]) : undefined;
}

function timelineRows(timeline, versions) {
  // Traffic share per version at each instant: the weights as the proxies applied them.
  const total = new Map();
  for (const v of versions) for (const [t, x] of timeline[v]?.["version-request-rate"] || []) total.set(t, (total.get(t) || 0) + (x || 0));
  return versions.map((v) => ({
    version: v,
    share: (timeline[v]?.["version-request-rate"] || []).map(([t, x]) => [t, total.get(t) ? (100 * (x || 0)) / total.get(t) : null]),
    success: timeline[v]?.["version-success-rate"] || [],
    p99: timeline[v]?.["version-p99"] || [],
  }));
}

async function act(r, command) {
  if (!confirm(`${command} rollout ${r.key}?`)) return;
  const token = $("#token").value.trim();
  const response = await fetch(`/api/rollouts/${r.namespace}/${r.name}/${command}`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error);
  $("#action-result").textContent = `${command} sent to ${r.key}`;
  refresh();
}

function drawRollout(r, actions) {
  const done = TERMINAL.includes(r.phase);
  const canAct = actions && $("#token").value.trim() !== "";
  const button = (command, enabled) => el("button", { "data-action": command, disabled: !canAct || !enabled || null, onclick: () => act(r, command).catch(showError) }, command);
  const steps = el("ol", { class: "steps", "data-testid": "steps" }, r.steps.map((s) => el("li", { class: s.status, "data-status": s.status }, s.description)));
  const metrics = el("table", { "data-testid": "metrics" },
    el("tr", {}, ["metric", "verdict", "canary", "stable", "ratio (CI)", "limit", "samples", "reason"].map((h, i) => el("th", { class: [2, 3, 6].includes(i) ? "num" : null }, h))),
    r.metrics.map((m) => el("tr", { "data-metric": m.metric }, el("td", {}, m.metric), el("td", {}, el("span", { class: m.verdict === "Successful" ? "badge" : m.verdict === "Failed" ? "badge bad" : "badge muted" }, m.verdict)),
      el("td", { class: "num" }, fmt(m.canary)), el("td", { class: "num" }, fmt(m.stable)), el("td", { "data-testid": "ratio" }, m.ratio || "-"), el("td", {}, m.limit), el("td", { class: "num" }, m.samples),
      el("td", { class: "muted" }, m.reason, m.explanation?.settle ? el("div", { "data-testid": "settle" }, `would settle it: ${m.explanation.settle}`) : null))));
  const plan = r.plan || { sight: [], warnings: [] };
  const seconds = (s) => (s == null ? "-" : s < 120 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`);
  const times = (x) => (x == null ? "-" : x >= 10 ? `${Math.round(x)}x` : `${Number(x).toPrecision(2)}x`);
  const sight = plan.sight.length || plan.warnings.length ? el("div", { "data-testid": "plan" },
    el("h4", {}, `What the plan${r.adaptive ? " (adaptive)" : ""} can see${plan.rps != null ? ` at ${Number(plan.rps).toPrecision(3)} req/s` : ""}`),
    plan.baseline ? el("div", { class: "muted" }, plan.baseline) : null,
    el("table", {}, el("tr", {}, ["metric", "stable bad", "effect size", "smallest caught (90%) by step", "catches the effect", "median time", "promotion"].map((h) => el("th", {}, h))),
      plan.sight.map((row) => el("tr", {}, el("td", {}, row.metric), el("td", { class: "num" }, `${Number(row.badPercent).toPrecision(2)}%`), el("td", { class: "num" }, `${row.effectSize}x`),
        el("td", {}, row.smallest.map((s) => `${s.step}: ${times(s.ratio)}`).join(", ") || "-"), el("td", { class: "num" }, `${Math.round(100 * row.catch)}%`),
        el("td", { class: "num" }, seconds(row.medianSeconds)), el("td", { class: "num" }, seconds(row.promoteSeconds))))),
    plan.warnings.map((w) => el("p", { class: "warn", "data-testid": "plan-warning" }, `warning: ${w}`))) : null;
  const log = el("table", { "data-testid": "log" }, el("tr", {}, el("th", {}, "at"), el("th", {}, "phase"), el("th", {}, "reason")),
    r.log.slice().reverse().map((e) => el("tr", {}, el("td", {}, e.at), el("td", {}, e.phase), el("td", {}, e.reason))));
  const rows = timelineRows(r.timeline || {}, [r.stableSubset, r.canarySubset]);
  return el("div", { class: "card rollout", "data-rollout": r.key, "data-phase": r.phase },
    el("div", { class: "rollout-head" },
      el("h3", {}, r.key), el("span", { class: phaseClass(r.phase), "data-testid": "phase" }, r.phase),
      el("span", { class: "muted" }, `${r.strategy} of ${r.host}: ${r.stableSubset} → ${r.canarySubset} · step ${r.step} · ${r.judge} judge · checks failed ${r.failedChecks}/${r.failureLimit}`),
      el("span", { class: "actions" }, button("promote", !done), button("pause", !done && r.phase !== "Paused"), button("resume", r.phase === "Paused"), button("abort", !done))),
    r.message ? el("p", { class: "muted" }, r.message) : null,
    el("div", { class: "split" },
      // Once promoted, the canary's version is the stable one and takes the stable share.
      el("div", { style: `width:${r.weights.stable}%;background:${COLORS[r.phase === "Succeeded" ? 1 : 0]}` },
        `${r.phase === "Succeeded" ? r.canarySubset : r.stableSubset} ${r.weights.stable}%`),
      el("div", { style: `width:${r.weights.canary}%;background:${COLORS[1]}`, "data-testid": "canary-weight" }, `${r.canarySubset} ${r.weights.canary}%`)),
    el("div", { class: "muted" }, r.weights.verified ? "weights applied by every proxy" : "waiting for the proxies to apply the weights"),
    el("div", { class: "rollout-grid" }, el("div", {}, el("h4", {}, "Steps"), steps), el("div", {}, el("h4", {}, "Analysis"), metrics)),
    sight,
    el("div", { class: "cards", style: "margin:12px 0" },
      lineChart("Observed traffic share", rows, "share", "%", { min: 0 }),
      lineChart("Success rate", rows, "success", "%", { limit: limitOf(r, "request-success-rate") }),
      lineChart("Latency p99", rows, "p99", "ms", { limit: limitOf(r, "request-duration") })),
    el("h4", {}, "Decision log"), log);
}

async function loadRollouts() {
  const { rollouts, actions } = await api(`/api/rollouts?window=${$("#window").value}`);
  const body = $("#rollouts-body");
  $("#token-bar").hidden = !actions;
  if (!rollouts.length) { body.replaceChildren(el("p", { class: "empty" }, "No rollout yet: start one with canarymesh rollout start -f canary.yaml")); return; }
  body.replaceChildren(...rollouts.map((r) => drawRollout(r, actions)));
}

// ---------------------------------------------------------------- shell
const loaders = {
  graph: async () => drawGraph(await api(`/api/graph?window=${$("#window").value}`)),
  service: async () => {
    await loadServices();
    if (state.service) drawService(await api(`/api/service?service=${encodeURIComponent(state.service)}&window=${$("#window").value}`));
    else $("#service-body").replaceChildren(el("p", { class: "empty" }, "No service has received requests yet."));
  },
  rollouts: loadRollouts,
  config: async () => drawConfig(await api("/api/config")),
  traces: loadTraces,
};

async function refresh() {
  clearTimeout(state.timer);
  try {
    await loaders[state.view]();
    showError(null);
    $("#live").textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = state.view;
  } catch (err) {
    showError(err);
  }
  state.timer = setTimeout(refresh, state.refresh * 1000);
}

function route() {
  state.view = (location.hash || "#graph").slice(1);
  if (!loaders[state.view]) state.view = "graph";
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === state.view);
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== `view-${state.view}`;
  delete document.body.dataset.loaded;
  refresh();
}

async function start() {
  try {
    const info = await api("/api/info");
    state.refresh = info.refresh_seconds;
    document.body.dataset.mode = info.mode;
    $("#version").textContent = info.version;
  } catch (err) { showError(err); }
  $("#window").addEventListener("change", refresh);
  $("#token").value = sessionStorage.getItem("canarymesh-token") || "";
  $("#token").addEventListener("change", (e) => { sessionStorage.setItem("canarymesh-token", e.target.value.trim()); refresh(); });
  $("#service-pick").addEventListener("change", (e) => { state.service = e.target.value; refresh(); });
  $("#trace-search").addEventListener("submit", (e) => { e.preventDefault(); state.trace = null; refresh(); });
  window.addEventListener("hashchange", route);
  route();
}
start();
