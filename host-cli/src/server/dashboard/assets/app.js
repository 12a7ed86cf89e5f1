// rh-wasm dashboard: a small page app over the daemon's own /v1 API, with
// the session cookie (state-changing requests carry the session's CSRF
// token in X-RH-CSRF). No framework, nothing fetched from elsewhere.
"use strict";

const app = document.getElementById("app");
let session = { user: null, admin: false, csrf: "" };
let aborts = [];
// Each view is one generation: a view replaced by another stops polling.
let generation = 0;

function stopAll() {
  generation += 1;
  aborts.forEach((a) => a.abort());
  aborts = [];
}

// Run `step` every `ms` after the previous one finished, while this view
// lasts (never two at once, never a view's poll after it was left).
function every(ms, step) {
  const mine = generation;
  const again = async () => {
    if (mine !== generation) return;
    try { if ((await step()) === false) return; } catch { /* try again */ }
    if (mine === generation) setTimeout(again, ms);
  };
  setTimeout(again, ms);
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids.flat()) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (opts.method && opts.method !== "GET") headers["X-RH-CSRF"] = session.csrf;
  const r = await fetch(path, Object.assign({}, opts, { headers, credentials: "same-origin" }));
  if (r.status === 401) { location.href = "/signin?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("signed out"); }
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!r.ok) {
    const msg = body && body.error ? body.error.message : String(body || r.status);
    const e = new Error(msg); e.status = r.status; throw e;
  }
  return body;
}

function statusBadge(s) {
  return el("span", { class: "status status-" + s, "data-status": s }, s.replace("_", " "));
}

function runLink(name) { return el("a", { href: "/runs/" + encodeURIComponent(name), "data-run": name }, name); }
function lineageLink(name, text) { return el("a", { href: "/lineage/" + encodeURIComponent(name) }, text || name); }

function fmtTime(t) { return t ? t.replace("T", " ").replace(/\.\d+Z$/, "Z") : "–"; }
function duration(c) {
  if (!c.start_time) return "–";
  const end = c.end_time ? Date.parse(c.end_time) : Date.now();
  const ms = end - Date.parse(c.start_time);
  if (ms < 1000) return ms.toFixed(0) + " ms";
  if (ms < 120000) return (ms / 1000).toFixed(1) + " s";
  return (ms / 60000).toFixed(1) + " min";
}
function fnOf(c) {
  if (c.run_type === "command") return c.cmds.map((x) => x.cmd).join(", ") || "command";
  if (c.function) return c.function.name + (c.fn_name ? "/" + c.fn_name : "");
  return c.run_type;
}

function showError(e) {
  app.replaceChildren(el("div", { class: "error-box", id: "error" }, e.message || String(e)));
}

// ------------------------------------------------------------------ runs

const FILTERS = ["status", "function", "creator", "tag", "since", "until", "parent"];

async function runsView() {
  const q = new URLSearchParams(location.search);
  const form = el("form", { class: "filters", id: "filters" });
  const input = (name, placeholder) => el("label", {}, name, el("input", { name, id: "f-" + name, value: q.get(name) || "", placeholder }));
  const status = el("select", { name: "status", id: "f-status" },
    ["", "not_started", "running", "completed", "error", "cancelled"].map((s) =>
      el("option", { value: s, selected: q.get("status") === s ? "selected" : null }, s || "any")));
  form.append(
    el("label", {}, "status", status),
    input("function", "summer/add"), input("creator", "alice"), input("tag", "team=search"),
    input("since", "1h or 2026-01-01"), input("until", ""),
    el("button", { class: "primary", type: "submit", id: "apply" }, "Filter"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const f of FILTERS) {
      const v = (form.elements[f] && form.elements[f].value || "").trim();
      if (v) p.set(f, v);
    }
    history.pushState(null, "", "/" + (p.toString() ? "?" + p : ""));
    route();
  });
  const table = el("table", { id: "runs" });
  const pager = el("div", { class: "pager" });
  app.replaceChildren(el("h1", {}, "Runs"), form, table, pager);
  const load = async () => {
    const p = new URLSearchParams();
    for (const f of FILTERS) if (q.get(f)) p.set(f, q.get(f));
    p.set("limit", q.get("limit") || "50");
    if (q.get("cursor")) p.set("cursor", q.get("cursor"));
    const page = await api("/v1/runs?" + p);
    const head = el("tr", {}, ["Run", "Status", "Function", "Started", "Duration", "Creator", "Tags"].map((h) => el("th", {}, h)));
    const rows = page.runs.map((c) => el("tr", { "data-row": c.name },
      el("td", {}, runLink(c.name)), el("td", {}, statusBadge(c.status)), el("td", { class: "mono" }, fnOf(c)),
      el("td", { class: "mono" }, fmtTime(c.start_time)), el("td", {}, duration(c)), el("td", {}, c.creator || "–"),
      el("td", { class: "mono" }, Object.entries(c.tags || {}).map(([k, v]) => k + "=" + v).join(" "))));
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 7, class: "muted", id: "empty" }, "No Runs match."))));
    pager.replaceChildren(el("span", { id: "count" }, page.runs.length + " shown"));
    if (page.next_cursor) {
      const n = new URLSearchParams(q); n.set("cursor", page.next_cursor);
      pager.append(el("a", { href: "/?" + n, id: "next" }, "Older →"));
    }
    if (q.get("cursor")) {
      const n = new URLSearchParams(q); n.delete("cursor");
      pager.append(el("a", { href: "/?" + n }, "Newest"));
    }
  };
  await load();
  // The newest page follows what happens: new Runs appear, statuses change.
  if (!q.get("cursor")) every(1500, load);
}

// ------------------------------------------------------------------- run

function follow(name, stream, pre) {
  const ctl = new AbortController();
  aborts.push(ctl);
  fetch("/v1/runs/" + encodeURIComponent(name) + "/logs?follow=1&stream=" + stream, { signal: ctl.signal, credentials: "same-origin" })
    .then(async (r) => {
      if (!r.ok || !r.body) return;
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pre.textContent += dec.decode(value, { stream: true });
        pre.scrollTop = pre.scrollHeight;
      }
    })
    .catch(() => {});
}

async function runView(name) {
  const path = "/v1/runs/" + encodeURIComponent(name);
  let c = await api(path);
  const access = await api(path + "/access").catch(() => ({ write: false }));
  const title = el("h1", {}, el("span", { id: "run-name" }, name), el("span", { id: "run-status" }, statusBadge(c.status)));
  const record = el("dl", { class: "record card", id: "record" });
  const fill = () => {
    const rows = [
      ["function", c.function ? c.function.name + (c.fn_name ? "/" + c.fn_name : "") : c.run_type],
      ["digest", c.function ? c.function.digest : "–"],
      ["type", c.run_type], ["started", fmtTime(c.start_time)], ["ended", fmtTime(c.end_time)],
      ["duration", duration(c)], ["creator", c.creator || "–"], ["host", c.host || "–"],
      ["fuel consumed", c.fuel_consumed ?? "–"],
      ["limits", c.limits ? `fuel ${c.limits.fuel ?? "default"}, memory ${c.limits.memory}, timeout ${c.limits.timeout_ms} ms` : "–"],
      ["tags", Object.entries(c.tags || {}).map(([k, v]) => k + "=" + v).join(" ") || "–"],
    ];
    if (c.attempts) rows.push(["attempts", c.attempts]);
    if (c.cache_hit) rows.push(["cache hit of", c.cache_hit]);
    record.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: "mono", "data-field": k }, String(v))]));
    record.append(el("dt", {}, "parent"), el("dd", {}, c.parent_run ? runLink(c.parent_run) : "–"));
    if (c.error) record.append(el("dt", {}, "error"), el("dd", { class: "mono", id: "run-error" }, c.error.kind + ": " + c.error.message));
    title.replaceChildren(el("span", { id: "run-name" }, name), el("span", { id: "run-status" }, statusBadge(c.status)));
  };
  fill();
  const cancel = el("button", { class: "danger", id: "cancel", type: "button" }, "Cancel");
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try { c = (await api(path + "/cancel", { method: "POST" })) && await api(path); fill(); } catch (e) { alert(e.message); }
  });
  const terminal = (s) => ["completed", "error", "cancelled"].includes(s);
  const actions = el("p", {}, access.write && !terminal(c.status) ? cancel : null, " ", lineageLink(name, "Lineage of this Run"));
  const stdout = el("pre", { id: "stdout" });
  const stderr = el("pre", { id: "stderr" });
  const inputs = el("pre", { class: "json", id: "inputs" }, "…");
  const result = el("pre", { class: "json", id: "result" }, "…");
  const files = el("ul", { id: "files" });
  const arts = el("div", { id: "artifacts" });
  const artList = (title, list) => el("div", {}, el("h2", {}, title),
    list.length ? el("ul", {}, list.map((a) => el("li", {}, lineageLink(a.name), " ", el("span", { class: "mono muted" }, a.digest.slice(0, 19))))) : el("p", { class: "muted" }, "none"));
  arts.replaceChildren(artList("Loaded (upstream)", c.upstream_artifacts || []), artList("Saved (downstream)", c.downstream_artifacts || []));
  const cmds = c.run_type === "command" ? el("table", { id: "cmds" },
    el("tr", {}, ["command", "args", "exit code"].map((h) => el("th", {}, h))),
    c.cmds.map((x) => el("tr", {}, el("td", { class: "mono" }, x.cmd), el("td", { class: "mono" }, x.args.join(" ")), el("td", {}, x.exit_code ?? "–")))) : null;
  app.replaceChildren(...[title, actions, record,
    el("div", { class: "grid" }, el("div", {}, el("h2", {}, "stdout"), stdout), el("div", {}, el("h2", {}, "stderr"), stderr)),
    el("div", { class: "grid" }, el("div", {}, el("h2", {}, "Inputs"), inputs), el("div", {}, el("h2", {}, "Result"), result)),
    cmds ? el("div", {}, el("h2", {}, "Commands"), cmds) : null,
    arts, el("h2", {}, "Files"), files].filter(Boolean));
  // One stream (a browser keeps few connections per host): stdout live,
  // stderr read again as the record is.
  follow(name, "stdout", stdout);
  const readStderr = async () => {
    const r = await fetch(path + "/logs?stream=stderr", { credentials: "same-origin" });
    if (r.ok) stderr.textContent = await r.text();
  };
  readStderr().catch(() => {});
  const finished = async () => {
    api(path + "/files/inputs.json").then((v) => { inputs.textContent = JSON.stringify(v, null, 2); }).catch(() => { inputs.textContent = "–"; });
    api(path + "/result").then((a) => {
      result.textContent = a.error ? a.error.kind + ": " + a.error.message : JSON.stringify(a.result, null, 2);
    }).catch((e) => { result.textContent = e.message; });
    api(path + "/files").then((l) => {
      files.replaceChildren(...l.files.map((f) => el("li", {}, el("a", { href: path + "/files/" + f.path.split("/").map(encodeURIComponent).join("/"), download: f.path }, f.path), " ", el("span", { class: "muted" }, f.size + " bytes"))));
    }).catch(() => {});
  };
  if (terminal(c.status)) { finished(); return; }
  inputs.textContent = "(when it ends)"; result.textContent = "(when it ends)";
  every(700, async () => {
    c = await api(path);
    fill();
    await readStderr();
    if (terminal(c.status)) { cancel.remove(); finished(); return false; }
  });
}

// --------------------------------------------------------------- lineage

function graphOf(root) {
  const nodes = new Map();
  const edges = new Set();
  const id = (n) => n.kind + ":" + n.name + (n.kind === "artifact" && n.digest ? "@" + n.digest.slice(7, 19) : "");
  const walk = (n, depth, seen) => {
    const k = id(n);
    if (!nodes.has(k)) nodes.set(k, { key: k, kind: n.kind, name: n.name, status: n.status, what: n.what, digest: n.digest, depth });
    else nodes.get(k).depth = Math.min(nodes.get(k).depth, depth);
    if (seen.has(k)) return;
    seen.add(k);
    for (const u of n.upstream || []) { edges.add(id(u) + " -> " + k); walk(u, depth - 1, seen); }
    for (const d of n.downstream || []) { edges.add(k + " -> " + id(d)); walk(d, depth + 1, seen); }
  };
  walk(root, 0, new Set());
  return { nodes: [...nodes.values()], edges: [...edges].map((e) => e.split(" -> ")) };
}

async function lineageView(name) {
  const tree = await api("/v1/lineage/" + encodeURIComponent(name));
  const g = graphOf(tree);
  const depths = [...new Set(g.nodes.map((n) => n.depth))].sort((a, b) => a - b);
  const cols = new Map(depths.map((d, i) => [d, i]));
  const perCol = new Map();
  const W = 190, H = 46, GX = 70, GY = 22;
  for (const n of g.nodes) {
    const col = cols.get(n.depth);
    const row = perCol.get(col) || 0;
    perCol.set(col, row + 1);
    n.x = 20 + col * (W + GX); n.y = 20 + row * (H + GY);
  }
  const width = 40 + depths.length * (W + GX), height = 40 + Math.max(...perCol.values()) * (H + GY);
  const byKey = new Map(g.nodes.map((n) => [n.key, n]));
  // Scaled to the page's width (a long chain stays readable as a whole).
  const s = svg("svg", { class: "lineage", id: "lineage", width: "100%", viewBox: `0 0 ${width} ${height}` },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a93a6" }))));
  s.style.maxWidth = width + "px";
  for (const [a, b] of g.edges) {
    const p = byKey.get(a), q = byKey.get(b);
    if (!p || !q) continue;
    s.append(svg("path", { class: "edge", "data-edge": a + " -> " + b, d: `M ${p.x + W} ${p.y + H / 2} C ${p.x + W + GX / 2} ${p.y + H / 2}, ${q.x - GX / 2} ${q.y + H / 2}, ${q.x} ${q.y + H / 2}` }));
  }
  for (const n of g.nodes) {
    const href = n.kind === "run" ? "/runs/" + encodeURIComponent(n.name) : "/lineage/" + encodeURIComponent(n.name);
    const sub = n.kind === "run" ? (n.what || "") + (n.status ? " · " + n.status : "") : (n.digest || "").slice(0, 19);
    s.append(svg("a", { href, class: "node " + n.kind, "data-node": n.key },
      svg("rect", { x: n.x, y: n.y, width: W, height: H }),
      svg("text", { x: n.x + 10, y: n.y + 19, "font-weight": 600 }, (n.kind === "run" ? "run " : "artifact ") + n.name),
      svg("text", { x: n.x + 10, y: n.y + 36, class: "muted" }, sub.length > 27 ? sub.slice(0, 26) + "…" : sub)));
  }
  app.replaceChildren(el("h1", {}, "Lineage of ", el("span", { class: "mono" }, name)),
    el("p", { class: "muted" }, "Artifacts and Runs; an arrow goes from what was loaded to the Run that loaded it, and from a Run to what it saved. Each node is a link."), s);
}

// ----------------------------------------------- functions, artifacts, hosts

async function functionsView() {
  const list = await api("/v1/functions");
  app.replaceChildren(el("h1", {}, "Functions"), el("table", { id: "functions" },
    el("tr", {}, ["Name", "Versions", "Digest", "Functions"].map((h) => el("th", {}, h))),
    list.map((d) => el("tr", { "data-function": d.name }, el("td", {}, d.name), el("td", {}, d.versions), el("td", { class: "mono" }, d.digest.slice(0, 19)),
      el("td", {}, el("ul", {}, (d.functions || []).map((f) => el("li", {}, el("span", { class: "mono" }, f.name + "(" + f.params.join(", ") + ")"), f.doc ? el("span", { class: "muted" }, " — " + f.doc) : null))))))));
}

async function artifactsView() {
  const list = await api("/v1/artifacts");
  app.replaceChildren(el("h1", {}, "Artifacts"), el("table", { id: "artifacts" },
    el("tr", {}, ["Name", "Versions (newest last)"].map((h) => el("th", {}, h))),
    list.map((a) => el("tr", { "data-artifact": a.name }, el("td", {}, lineageLink(a.name)),
      el("td", {}, el("ul", {}, a.versions.map((v) => el("li", { class: "mono" }, v.digest.slice(0, 19), " · ", v.size + " B · ", fmtTime(v.created), " · by ", v.saved_by || "–", v.run ? [" · run ", runLink(v.run)] : null))))))));
}

async function hostsView() {
  try {
    const hosts = await api("/v1/hosts");
    app.replaceChildren(el("h1", {}, "Hosts"), el("table", { id: "hosts" },
      el("tr", {}, ["Host", "URL", "Slots in use", "Queue", "Last heartbeat"].map((h) => el("th", {}, h))),
      hosts.map((h) => el("tr", { "data-host": h.name }, el("td", {}, h.name), el("td", { class: "mono" }, h.url),
        el("td", {}, h.slots_in_use + " / " + h.slots), el("td", {}, h.queue_depth), el("td", {}, ((Date.now() - h.heartbeat_ms) / 1000).toFixed(1) + " s ago")))));
  } catch (e) {
    const h = await api("/v1/health");
    app.replaceChildren(el("h1", {}, "Hosts"), el("div", { class: "card", id: "hosts" },
      el("p", {}, "One host: cluster ", el("b", {}, h.cluster), ", version " + h.version + "."),
      el("p", { class: "muted" }, "A cluster of several hosts (serve --nats) lists each here with its slots and load.")));
  }
}

// ----------------------------------------------------------------- route

async function route() {
  stopAll();
  const p = location.pathname;
  const here = p === "/" ? "runs" : p.split("/")[1];
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("here", a.dataset.nav === here));
  try {
    if (p === "/") await runsView();
    else if (p.startsWith("/runs/")) await runView(decodeURIComponent(p.slice(6)));
    else if (p.startsWith("/lineage/")) await lineageView(decodeURIComponent(p.slice(9)));
    else if (p === "/functions") await functionsView();
    else if (p === "/artifacts") await artifactsView();
    else if (p === "/hosts") await hostsView();
    else app.replaceChildren(el("p", {}, "No such page."));
  } catch (e) { if (e.message !== "signed out") showError(e); }
  // For tests and the bench: this page's first screen is complete.
  document.body.dataset.readyMs = String(Math.round(performance.now()));
  document.body.dataset.ready = p;
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a");
  if (!a || a.getAttribute("target") || a.hasAttribute("download") || ev.ctrlKey || ev.metaKey) return;
  const href = a.getAttribute("href");
  if (!href || !href.startsWith("/") || href.startsWith("/v1/")) return;
  ev.preventDefault();
  history.pushState(null, "", href);
  route();
});
window.addEventListener("popstate", route);

(async () => {
  try {
    session = await api("/ui/session");
    document.getElementById("who").textContent = session.user ? session.user + (session.admin ? " (admin)" : "") : "signed in";
    document.getElementById("signout-csrf").value = session.csrf;
  } catch { return; }
  route();
})();
