// The voxflow monitor: flows with their diagrams, triggers, live calls and call history.
// Plain browser JavaScript, no build step and nothing fetched from the web: the server
// draws the diagrams (SVG whose nodes carry data-node) and streams events over SSE.
"use strict";

const state = {
  token: null,
  flows: new Map(),      // flow id -> summary
  calls: new Map(),      // call id -> record (live and recent)
  selectedFlow: null,
  selectedCall: null,
  transcript: [],        // turns of the selected call
  interim: null,         // the caller's words so far, not final yet
  changed: new Set(),    // variables that changed lately (highlighted)
  source: null,
};

const $ = (id) => document.getElementById(id);
const LIVE = new Set(["ringing", "active"]);

function readToken() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem("voxflow_token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname);
  }
  state.token = sessionStorage.getItem("voxflow_token");
}

async function api(path) {
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  const response = await fetch(path, { headers });
  if (response.status === 401) {
    askForToken();
    throw new Error("unauthorised");
  }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

function askForToken() {
  const dialog = $("login");
  if (dialog.open) return;
  dialog.showModal();
  dialog.addEventListener("close", () => {
    state.token = $("token-input").value.trim();
    sessionStorage.setItem("voxflow_token", state.token);
    start();
  }, { once: true });
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

// A link only to a web address (http: or https:); a stored "javascript:..." is no link.
function webUrl(value) {
  if (typeof value !== "string") return null;
  try {
    const url = new URL(value, location.href);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch (error) {
    return null;
  }
}

function link(href, text, attrs = {}) {
  const url = webUrl(href);
  return url ? el("a", { ...attrs, href: url, rel: "noopener noreferrer" }, text) : null;
}

function seconds(value) {
  if (value === null || value === undefined) return "";
  const s = Math.round(value);
  return s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
}

function clock(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleString() : "";
}

// ---- flows, triggers, problems ------------------------------------------------

async function loadFlows() {
  const { flows } = await api("/api/flows");
  state.flows = new Map(flows.map((f) => [f.flow_id, f]));
  const list = $("flow-list");
  list.replaceChildren(...flows.map((flow) => el("li", {
    class: flow.flow_id === state.selectedFlow ? "selected" : "",
    "data-flow": flow.flow_id,
    onclick: () => showFlow(flow.flow_id),
  },
  el("strong", {}, flow.flow_id), " ", el("span", { class: "version" }, flow.short_version),
  flow.errors ? el("span", { class: "badge", title: "errors in its file" }, flow.errors) : null,
  liveCount(flow.flow_id) ? el("span", { class: "badge live" }, `${liveCount(flow.flow_id)} live`) : null,
  el("div", { class: "numbers" }, flow.numbers.join(", ")))));
  if (!state.selectedFlow && flows.length) await showFlow(flows[0].flow_id);
  else if (state.selectedFlow && !state.flows.has(state.selectedFlow)) {
    $("diagram").replaceChildren(el("p", { class: "empty" }, "This flow is no longer served."));
  }
}

function liveCount(flowId) {
  let count = 0;
  for (const call of state.calls.values()) {
    if (call.flow_id === flowId && LIVE.has(call.status)) count += 1;
  }
  return count;
}

async function loadTriggers() {
  const { triggers } = await api("/api/triggers");
  $("trigger-table").tBodies[0].replaceChildren(...triggers.map((t) => el("tr", {},
    el("td", {}, t.number),
    el("td", {}, t.flow),
    el("td", {}, t.business_hours
      ? el("span", { title: t.business_hours.timezone },
        `${t.business_hours.open_now ? "open" : "closed"}, ${t.business_hours.timezone}`)
      : "always"))));
}

async function loadProblems() {
  const { problems } = await api("/api/problems");
  showProblems(problems);
}

function showProblems(problems) {
  const errors = problems.filter((p) => p.severity === "error");
  const warnings = problems.filter((p) => p.severity !== "error");
  const box = $("problems");
  box.hidden = problems.length === 0;
  const parts = [];
  if (errors.length) {
    parts.push(el("div", { class: "problem-errors" },
      `Flow files with errors (the previous version is still served):\n${errors.map((e) => e.text).join("\n")}`));
  }
  if (warnings.length) {
    parts.push(el("div", { class: "problem-warnings" },
      `Warnings (the flows run, but look at these):\n${warnings.map((w) => w.text).join("\n")}`));
  }
  box.replaceChildren(...parts);
}

let noticeTimer = null;
function notice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

async function showFlow(flowId) {
  state.selectedFlow = flowId;
  for (const item of document.querySelectorAll("#flow-list li")) {
    item.classList.toggle("selected", item.dataset.flow === flowId);
  }
  const flow = state.flows.get(flowId);
  $("diagram-title").textContent = flow ? `${flowId} · ${flow.short_version}` : flowId;
  try {
    const svg = await api(`/api/flows/${encodeURIComponent(flowId)}/diagram.svg`);
    $("diagram").innerHTML = svg;
    fitDiagram();
  } catch (error) {
    $("diagram").replaceChildren(el("p", { class: "empty" }, String(error)));
  }
  lightNodes();
}

function lightNodes() {
  const svg = document.querySelector("#diagram svg");
  if (!svg) return;
  for (const node of svg.querySelectorAll(".node")) node.classList.remove("current", "visited");
  const call = state.calls.get(state.selectedCall);
  if (!call || call.flow_id !== svg.dataset.flow) return;
  for (const id of call.node_path || []) {
    const node = svg.querySelector(`.node[data-node="${CSS.escape(id)}"]`);
    if (node) node.classList.add("visited");
  }
  if (LIVE.has(call.status) && call.current_node) {
    const current = svg.querySelector(`.node[data-node="${CSS.escape(call.current_node)}"]`);
    if (current) {
      current.classList.add("current");
      keepInView(current);
    }
  }
}

// ---- diagram: zoom, fit and pan ------------------------------------------------------
// The SVG keeps its own coordinates; the view is its viewBox, so text stays sharp.

const view = { box: null, full: null, dragging: null };

function fitDiagram() {
  const svg = document.querySelector("#diagram svg");
  if (!svg) return;
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  const [x, y, w, h] = (svg.getAttribute("viewBox") || "0 0 100 100").split(/\s+/).map(Number);
  view.full = { x, y, w, h };
  view.box = { ...view.full };
  applyView();
}

function applyView() {
  const svg = document.querySelector("#diagram svg");
  if (!svg || !view.box) return;
  const { x, y, w, h } = view.box;
  svg.setAttribute("viewBox", `${x} ${y} ${w} ${h}`);
}

function zoomDiagram(factor, cx = 0.5, cy = 0.5) {
  if (!view.box) return;
  const { x, y, w, h } = view.box;
  const nw = Math.min(Math.max(w * factor, view.full.w / 8), view.full.w * 4);
  const nh = h * (nw / w);
  view.box = { x: x + (w - nw) * cx, y: y + (h - nh) * cy, w: nw, h: nh };
  applyView();
}

function keepInView(node) {
  // Pans (never zooms) so that the lit node is on screen.
  if (!view.box) return;
  const box = node.getBBox();
  const match = (node.getAttribute("transform") || "").match(/translate\(([-\d.]+),([-\d.]+)\)/);
  const nx = match ? Number(match[1]) : box.x;
  const ny = match ? Number(match[2]) : box.y;
  const { x, y, w, h } = view.box;
  if (nx >= x && ny >= y && nx + box.width <= x + w && ny + box.height <= y + h) return;
  view.box = { ...view.box, x: nx + box.width / 2 - w / 2, y: ny + box.height / 2 - h / 2 };
  applyView();
}

function setUpDiagramControls() {
  const holder = $("diagram");
  $("zoom-in").addEventListener("click", () => zoomDiagram(0.8));
  $("zoom-out").addEventListener("click", () => zoomDiagram(1.25));
  $("zoom-fit").addEventListener("click", fitDiagram);
  holder.addEventListener("wheel", (event) => {
    if (!view.box) return;
    event.preventDefault();
    const rect = holder.getBoundingClientRect();
    zoomDiagram(event.deltaY < 0 ? 0.9 : 1.1, (event.clientX - rect.left) / rect.width,
      (event.clientY - rect.top) / rect.height);
  }, { passive: false });
  holder.addEventListener("pointerdown", (event) => {
    if (!view.box || event.button !== 0) return;
    view.dragging = { x: event.clientX, y: event.clientY, box: { ...view.box } };
    holder.setPointerCapture(event.pointerId);
    holder.classList.add("panning");
  });
  holder.addEventListener("pointermove", (event) => {
    const drag = view.dragging;
    const svg = holder.querySelector("svg");
    if (!drag || !svg) return;
    const scale = drag.box.w / svg.getBoundingClientRect().width;
    view.box = { ...drag.box, x: drag.box.x - (event.clientX - drag.x) * scale,
      y: drag.box.y - (event.clientY - drag.y) * scale };
    applyView();
  });
  const stop = () => { view.dragging = null; holder.classList.remove("panning"); };
  holder.addEventListener("pointerup", stop);
  holder.addEventListener("pointercancel", stop);
}

// ---- calls ----------------------------------------------------------------------

async function loadCalls() {
  const { calls } = await api("/api/calls?limit=100");
  for (const call of calls) state.calls.set(call.call_id, call);
  renderCalls();
}

function renderCalls() {
  const calls = [...state.calls.values()].sort((a, b) => (b.started_at || 0) - (a.started_at || 0));
  const live = calls.filter((c) => LIVE.has(c.status));
  $("live-calls").replaceChildren(...(live.length ? live.map((call) => el("li", {
    class: call.call_id === state.selectedCall ? "selected" : "",
    "data-call": call.call_id,
    onclick: () => selectCall(call.call_id),
  },
  el("span", { class: `status ${call.status}` }, call.status), " ",
  el("strong", {}, call.caller || "unknown caller"), " → ", call.flow_id || "", " ",
  call.current_node ? el("span", { class: "node" }, call.current_node) : null))
    : [el("li", { class: "empty" }, "No calls in progress.")]));
  $("history").tBodies[0].replaceChildren(...calls.filter((c) => !LIVE.has(c.status)).slice(0, 50)
    .map((call) => el("tr", { onclick: () => selectCall(call.call_id), "data-call": call.call_id },
      el("td", {}, clock(call.started_at)),
      el("td", {}, call.caller || ""),
      el("td", {}, call.called || ""),
      el("td", {}, call.flow_id || ""),
      el("td", {}, el("span", { class: `status ${call.status}`, title: call.reason || "" }, call.status)),
      el("td", { class: "reason" }, call.reason || ""),
      el("td", {}, seconds(call.duration)),
      el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); selectCall(call.call_id); } }, "show")),
      el("td", {}, link(call.recording_url, "listen", { target: "_blank" }) || ""))));
  for (const item of document.querySelectorAll("#flow-list li")) {
    const count = liveCount(item.dataset.flow);
    const badge = item.querySelector(".badge.live");
    if (badge) badge.remove();
    if (count) item.append(el("span", { class: "badge live" }, `${count} live`));
  }
}

async function selectCall(callId) {
  state.selectedCall = callId;
  const detail = await api(`/api/calls/${encodeURIComponent(callId)}`);
  state.calls.set(callId, detail);
  state.transcript = detail.transcript || [];
  state.interim = null;
  state.changed = new Set();
  if (detail.flow_id && detail.flow_id !== state.selectedFlow && state.flows.has(detail.flow_id)) {
    await showFlow(detail.flow_id);
  }
  renderCalls();
  renderDetail();
  lightNodes();
}

function renderDetail() {
  const call = state.calls.get(state.selectedCall);
  const box = $("call-detail");
  box.hidden = !call;
  if (!call) return;
  $("call-title").textContent = `Call ${call.caller || ""} → ${call.called || ""}`;
  const facts = [
    ["Status", el("span", { class: `status ${call.status}` }, call.status)],
    ["Flow", `${call.flow_id || "none"} @ ${(call.flow_version || "").slice(0, 12)}`],
    ["Node", call.current_node || "—"],
    ["Started", clock(call.started_at)],
    ["Duration", call.duration !== null && call.duration !== undefined
      ? seconds(call.duration) : seconds(Date.now() / 1000 - (call.answered_at || call.started_at))],
    ["Reason", call.reason || ""],
    ["Recording", link(call.recording_url, "listen") || "—"],
  ];
  $("call-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const turns = state.transcript.map((t) => el("li", { class: t.speaker },
    el("span", { class: "who" }, t.kind === "dtmf" ? `${t.speaker} pressed` : t.speaker), t.text));
  if (state.interim) {
    turns.push(el("li", { class: "caller interim" }, el("span", { class: "who" }, "caller…"), state.interim));
  }
  const list = $("transcript");
  list.replaceChildren(...(turns.length ? turns : [el("li", { class: "empty" }, "Nothing said yet.")]));
  list.scrollTop = list.scrollHeight;
  const variables = Object.entries(call.variables || {}).sort(([a], [b]) => a.localeCompare(b));
  $("variables").tBodies[0].replaceChildren(...variables.map(([name, value]) => el("tr",
    { class: state.changed.has(name) ? "changed" : "" },
    el("td", {}, name), el("td", {}, JSON.stringify(value)))));
  $("path").textContent = (call.node_path || []).join(" → ") || "—";
  // Variables a template read that this call did not have (live, and from the call record).
  const warnings = [...new Set([...(call.warnings || []), ...(call.events || [])
    .filter((e) => e.kind === "variable_missing").map((e) => e.message)])];
  $("warnings").replaceChildren(...(warnings.length ? warnings.map((w) => el("li", {}, w))
    : [el("li", { class: "empty" }, "None.")]));
}

// ---- live events -----------------------------------------------------------------

function onEvent(event) {
  const { type, call_id: callId, data } = event;
  if (type === "flows:reloaded") {
    const errors = data.errors || [];
    if (!errors.length) notice(`Flows reloaded: ${data.summary}`);
    loadProblems().catch(() => showProblems(errors));
    loadFlows().then(() => {
      if (typeof fillTargets === "function") fillTargets();
      return state.selectedFlow && showFlow(state.selectedFlow);
    });
    return;
  }
  let call = state.calls.get(callId);
  if (!call) {
    call = { call_id: callId, flow_id: event.flow_id, status: "ringing", node_path: [],
      variables: {}, started_at: event.at, caller: data.caller, called: data.called };
    state.calls.set(callId, call);
  }
  const selected = callId === state.selectedCall;
  switch (type) {
    case "call:incoming":
      Object.assign(call, { caller: data.caller, called: data.called,
        flow_version: data.flow_version, flow_id: event.flow_id || call.flow_id });
      if (!state.selectedCall || !LIVE.has((state.calls.get(state.selectedCall) || {}).status)) {
        selectCall(callId).catch(() => {});
      }
      break;
    case "call:active":
      call.status = "active";
      call.answered_at = call.answered_at || event.at;
      if (data.flow_version) call.flow_version = data.flow_version;
      break;
    case "call:node_change":
      if (!data.node_flow_id || data.node_flow_id === call.flow_id) {
        call.node_path = [...(call.node_path || []), ...(data.walked || [data.node_id])];
        call.current_node = data.node_id;
      } else {
        call.current_node = `${data.node_flow_id}/${data.node_id}`;
      }
      break;
    case "call:variable_updated":
      call.variables = { ...(call.variables || {}), [data.name]: data.value };
      if (selected) {
        state.changed.add(data.name);  // highlighted for a moment
        setTimeout(() => { state.changed.delete(data.name); renderDetail(); }, 2500);
      }
      break;
    case "call:transcript":
      if (selected) {
        if (data.is_final) {
          state.transcript.push(data);
          state.interim = null;  // the caller's turn is over, whoever spoke last
        } else {
          state.interim = data.text || "speaking…";  // no words yet: heard, not understood
        }
      }
      break;
    case "call:ended":
      Object.assign(call, { status: data.status, reason: data.reason, duration: data.duration,
        current_node: null, ended_at: event.at });
      break;
    case "call:error":
      call.reason = data.message;
      break;
    case "call:variable_missing":
      call.warnings = [...(call.warnings || []), data.message];
      break;
    default:
      break;
  }
  renderCalls();
  if (selected) {
    renderDetail();
    lightNodes();
  }
}

function connect() {
  if (state.source) state.source.close();
  const query = state.token ? `?token=${encodeURIComponent(state.token)}` : "";
  const source = new EventSource(`/api/events${query}`);
  state.source = source;
  const status = $("connection");
  source.onopen = () => { status.textContent = "live"; status.className = "connection live"; };
  source.onerror = () => { status.textContent = "reconnecting…"; status.className = "connection down"; };
  const types = ["call:incoming", "call:active", "call:transcript", "call:node_change",
    "call:variable_updated", "call:ended", "call:error", "call:variable_missing", "flows:reloaded"];
  for (const type of types) {
    source.addEventListener(type, (message) => onEvent(JSON.parse(message.data)));
  }
}

async function start() {
  try {
    await Promise.all([loadCalls(), loadTriggers(), loadProblems()]);
    await loadFlows();
    connect();
    if (typeof setUpCaller === "function") await setUpCaller();
    const live = [...state.calls.values()].find((c) => LIVE.has(c.status));
    if (live) await selectCall(live.call_id);
    document.body.dataset.ready = "true";
  } catch (error) {
    if (String(error).includes("unauthorised")) return;
    $("connection").textContent = `error: ${error}`;
    $("connection").className = "connection down";
  }
}

setInterval(() => {  // keeps the running duration of the selected call moving
  const call = state.calls.get(state.selectedCall);
  if (call && LIVE.has(call.status)) renderDetail();
}, 1000);

readToken();
setUpDiagramControls();
start();
