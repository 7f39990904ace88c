// Call analytics over the diagram, and a call made a test (see engine/server/stats_api.py).
// "Traffic" draws the current version's figures on the flow's diagram: under each node the
// share of calls that reached it and that ended there (drop-off), edges as thick as the
// share of calls that took them. "Make a test" writes the selected call as a conversation
// test beside its flow. Plain browser JavaScript; it uses monitor.js's api(), el(), state.
"use strict";

const traffic = { on: false, since: "30d", flow: null, data: null };
const SVG_NS = "http://www.w3.org/2000/svg";

function pct(value) {
  return value === null || value === undefined ? "—" : `${Math.round(value * 1000) / 10}%`;
}

async function loadTraffic() {
  const svg = document.querySelector("#diagram svg");
  const summary = document.getElementById("flow-stats");
  if (!traffic.on || !svg) {
    summary.hidden = true;
    return;
  }
  const flowId = svg.dataset.flow;
  const since = traffic.since ? `&since=${encodeURIComponent(traffic.since)}` : "";
  const data = await api(`/api/flows/${encodeURIComponent(flowId)}/stats?version=current${since}`);
  if (document.querySelector("#diagram svg") !== svg) return;  // another flow meanwhile
  traffic.data = data;
  drawTraffic(svg, data.versions[0]);
}

function drawTraffic(svg, stats) {
  const summary = document.getElementById("flow-stats");
  summary.hidden = false;
  svg.classList.add("with-traffic");
  for (const marker of svg.querySelectorAll("marker")) {
    // Arrowheads keep their size however thick the edge is drawn.
    marker.setAttribute("markerUnits", "userSpaceOnUse");
    marker.setAttribute("markerWidth", "10");
    marker.setAttribute("markerHeight", "10");
  }
  for (const old of svg.querySelectorAll(".traffic-label")) old.remove();
  if (!stats || !stats.calls) {
    summary.textContent = "No ended calls of this version yet" +
      (traffic.since ? ` in the last ${traffic.since}.` : ".");
    for (const edge of svg.querySelectorAll("path.edge[data-source]")) {
      edge.style.strokeWidth = "";
      edge.classList.add("no-traffic");
    }
    return;
  }
  const r = stats.rates;
  summary.textContent = `${stats.calls} calls · completed ${pct(r.completed)} · transferred ` +
    `${pct(r.transferred)} · hung up ${pct(r.user_hangup)} · failed ${pct(r.failed)} · ` +
    `timeout ${pct(r.timeout)} · p50 ${stats.duration_p50 ?? "—"} s · p95 ` +
    `${stats.duration_p95 ?? "—"} s`;
  const nodes = new Map(stats.nodes.map((n) => [n.node_id, n]));
  for (const group of svg.querySelectorAll("g.node[data-node]")) {
    const node = nodes.get(group.dataset.node);
    const rect = group.querySelector("rect");
    const width = Number(rect.getAttribute("width"));
    const height = Number(rect.getAttribute("height"));
    const label = document.createElementNS(SVG_NS, "g");
    label.setAttribute("class", "traffic-label" + (node && node.ended_share >= 0.2 ? " drop" : ""));
    label.dataset.reached = node ? String(node.reached_share) : "0";
    label.dataset.ended = node ? String(node.ended_share) : "0";
    const text = node ? `${pct(node.reached_share)} reached · ${pct(node.ended_share)} ended` : "not reached";
    const background = document.createElementNS(SVG_NS, "rect");
    const words = document.createElementNS(SVG_NS, "text");
    words.textContent = text;
    words.setAttribute("x", String(width / 2));
    words.setAttribute("y", String(height + 13));
    words.setAttribute("text-anchor", "middle");
    background.setAttribute("x", String(width / 2 - text.length * 3.1 - 4));
    background.setAttribute("y", String(height + 2));
    background.setAttribute("width", String(text.length * 6.2 + 8));
    background.setAttribute("height", "15");
    background.setAttribute("rx", "7");
    label.append(background, words);
    if (node && (node.no_input_rate || node.no_match_rate)) {
      const title = document.createElementNS(SVG_NS, "title");
      title.textContent = `no-input ${pct(node.no_input_rate)}, no-match ${pct(node.no_match_rate)}` +
        (node.confidence !== null ? `, confidence ${node.confidence}` : "");
      label.append(title);
    }
    group.append(label);
  }
  const edges = new Map(stats.edges.map((e) => [`${e.source}>${e.target}`, e]));
  for (const edge of svg.querySelectorAll("path.edge[data-source]")) {
    const found = edges.get(`${edge.dataset.source}>${edge.dataset.target}`);
    const share = found ? found.share : 0;
    edge.dataset.share = String(share);
    edge.classList.toggle("no-traffic", !found);
    edge.style.strokeWidth = found ? String(1.4 + 10 * share) : "";
  }
}

function setUpTraffic() {
  const button = document.getElementById("traffic");
  const since = document.getElementById("traffic-since");
  button.addEventListener("click", () => {
    traffic.on = !traffic.on;
    button.classList.toggle("on", traffic.on);
    button.setAttribute("aria-pressed", String(traffic.on));
    since.hidden = !traffic.on;
    if (!traffic.on) {
      const svg = document.querySelector("#diagram svg");
      if (svg) {
        svg.classList.remove("with-traffic");
        for (const old of svg.querySelectorAll(".traffic-label")) old.remove();
        for (const edge of svg.querySelectorAll("path.edge")) edge.style.strokeWidth = "";
      }
    }
    loadTraffic().catch((error) => notice(`Traffic: ${error}`));
  });
  since.addEventListener("change", () => {
    traffic.since = since.value;
    loadTraffic().catch((error) => notice(`Traffic: ${error}`));
  });
  // A new diagram (another flow, a reload): draw its traffic too.
  new MutationObserver(() => {
    if (traffic.on) loadTraffic().catch(() => {});
  }).observe(document.getElementById("diagram"), { childList: true });
}

async function makeTest() {
  const callId = state.selectedCall;
  if (!callId) return;
  const mask = document.getElementById("mask-test").checked ? "?mask=1" : "";
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  const response = await fetch(`/api/calls/${encodeURIComponent(callId)}/test${mask}`,
    { method: "POST", headers });
  const body = await response.json();
  const out = document.getElementById("made-test");
  out.hidden = false;
  out.textContent = response.ok ? `Wrote ${body.file}. Run it: ${body.run}` : body.error;
  out.className = response.ok ? "made-test" : "made-test failed";
}

setUpTraffic();
document.getElementById("make-test").addEventListener("click", () => {
  makeTest().catch((error) => notice(`Make a test: ${error}`));
});
