// The browser caller: call a flow from the monitor page and talk to it.
// The microphone goes to the server over an authenticated WebSocket (/api/caller) as
// 16-bit PCM at the AudioContext's rate; the agent's voice comes back as 16-bit PCM at
// 16 kHz and is played as it arrives. The call takes the path of a phone call, so the
// rest of the page (diagram, transcript, variables, history) follows it as any call.
// With no microphone, "Call by typing" places the same call with typed words instead.
"use strict";

const AGENT_RATE = 16000;

const caller = {
  ws: null,
  audio: null,         // AudioContext, made on the click that starts a call
  mic: null,           // MediaStream
  capture: null,       // AudioWorkletNode
  muted: false,
  mode: null,          // "voice" | "text" while a call is live
  callId: null,
  playHead: 0,
  // What the page heard, for people and for tests: chunks and samples received,
  // how many were played out, and the loudest sample (0..1).
  stats: { chunks: 0, samples: 0, played: 0, peak: 0, sent: 0 },
};
window.voxflowCaller = caller;

function tabId() {
  let id = sessionStorage.getItem("voxflow_tab");
  if (!id) {
    id = Math.random().toString(36).slice(2) + Date.now().toString(36);
    sessionStorage.setItem("voxflow_tab", id);
  }
  return id;
}

function callerStatus(text, kind = "") {
  const box = $("caller-status");
  box.textContent = text;
  box.className = `caller-status ${kind}`;
}

function callerLive(live) {
  for (const id of ["call-voice", "call-text", "caller-target"]) $(id).disabled = live;
  for (const id of ["hang-up", "mute"]) $(id).disabled = !live;
  for (const key of document.querySelectorAll("#keypad button")) key.disabled = !live;
  $("typed").disabled = !live;
  $("typed-send").disabled = !live;
  document.body.dataset.callerLive = live ? "true" : "false";
}

async function setUpCaller() {
  let status;
  try {
    status = await api("/api/caller/status");
  } catch (error) {
    return;
  }
  const panel = $("caller");
  panel.hidden = false;
  if (!status.available) {
    callerStatus("This server runs no voice agent: run 'voxflow dev' to call your flows here.");
    for (const id of ["call-voice", "call-text"]) $(id).disabled = true;
    return;
  }
  $("caller-engines").textContent = status.engines || "";
  const keypad = $("keypad");
  keypad.replaceChildren(..."123456789*0#".split("").map((digit) => el("button", {
    type: "button", "data-digit": digit, onclick: () => sendKey(digit),
  }, digit)));
  $("call-voice").addEventListener("click", () => placeCall("voice"));
  $("call-text").addEventListener("click", () => placeCall("text"));
  $("hang-up").addEventListener("click", hangUp);
  $("mute").addEventListener("click", toggleMute);
  $("typed-form").addEventListener("submit", (event) => { event.preventDefault(); sendTyped(); });
  callerLive(false);
  fillTargets();
}

function fillTargets() {
  const select = $("caller-target");
  const chosen = select.value;
  const options = [];
  for (const flow of state.flows.values()) {
    options.push(el("option", { value: `flow:${flow.flow_id}` }, `flow ${flow.flow_id}`));
  }
  for (const row of document.querySelectorAll("#trigger-table tbody tr")) {
    const number = row.cells[0].textContent;
    options.push(el("option", { value: `number:${number}` }, `${number} (${row.cells[1].textContent})`));
  }
  select.replaceChildren(...options);
  if (chosen && [...select.options].some((o) => o.value === chosen)) select.value = chosen;
  else if (state.selectedFlow) select.value = `flow:${state.selectedFlow}`;
}

async function placeCall(mode) {
  if (caller.ws) return;
  const target = $("caller-target").value;
  if (!target) return;
  callerStatus("calling…");
  callerLive(true);
  try {
    caller.audio = caller.audio || new AudioContext();
    await caller.audio.resume();
    caller.playHead = 0;
    if (mode === "voice") await openMicrophone();
  } catch (error) {
    callerStatus(`No microphone (${error.message || error}): use "Call by typing".`, "bad");
    callerLive(false);
    return;
  }
  const query = state.token ? `?token=${encodeURIComponent(state.token)}` : "";
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/caller${query}`);
  ws.binaryType = "arraybuffer";
  caller.ws = ws;
  caller.mode = mode;
  ws.onopen = () => {
    const [kind, value] = [target.slice(0, target.indexOf(":")), target.slice(target.indexOf(":") + 1)];
    ws.send(JSON.stringify({ type: "start", [kind]: value, mode, tab: tabId(),
      rate: caller.audio.sampleRate }));
  };
  ws.onmessage = (message) => {
    if (typeof message.data === "string") onCallerMessage(JSON.parse(message.data));
    else playAgent(message.data);
  };
  ws.onclose = () => endCall(null);
}

async function openMicrophone() {
  caller.mic = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  await caller.audio.audioWorklet.addModule("/monitor/caller-worklet.js");
  const source = caller.audio.createMediaStreamSource(caller.mic);
  const capture = new AudioWorkletNode(caller.audio, "voxflow-capture");
  const sink = caller.audio.createGain();
  sink.gain.value = 0;  // the worklet must be pulled by the graph, but not heard
  source.connect(capture).connect(sink).connect(caller.audio.destination);
  capture.port.onmessage = (event) => sendAudio(event.data);
  caller.capture = capture;
}

function sendAudio(samples) {
  const ws = caller.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || caller.muted || !caller.callId) return;
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i += 1) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    pcm[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
  }
  ws.send(pcm.buffer);
  caller.stats.sent += pcm.length;
}

function playAgent(buffer) {
  const pcm = new Int16Array(buffer);
  if (!pcm.length || !caller.audio) return;
  const samples = new Float32Array(pcm.length);
  let peak = 0;
  for (let i = 0; i < pcm.length; i += 1) {
    samples[i] = pcm[i] / 0x8000;
    peak = Math.max(peak, Math.abs(samples[i]));
  }
  caller.stats.chunks += 1;
  caller.stats.samples += pcm.length;
  caller.stats.peak = Math.max(caller.stats.peak, peak);
  const clip = caller.audio.createBuffer(1, samples.length, AGENT_RATE);
  clip.copyToChannel(samples, 0);
  const source = caller.audio.createBufferSource();
  source.buffer = clip;
  source.connect(caller.audio.destination);
  // A little slack absorbs the network's jitter; the server paces audio in real time.
  const now = caller.audio.currentTime;
  if (caller.playHead < now + 0.02) caller.playHead = now + 0.06;
  source.start(caller.playHead);
  caller.playHead += clip.duration;
  source.onended = () => { caller.stats.played += pcm.length; };
}

function onCallerMessage(message) {
  switch (message.type) {
    case "started":
      caller.callId = message.call_id;
      callerStatus(caller.mode === "text" ? "On the call: type your answers, or press keys."
        : "On the call: speak, or press keys.", "live");
      if (typeof selectCall === "function") selectCall(message.call_id).catch(() => {});
      break;
    case "ended":
      endCall(`Call ended: ${message.status}${message.reason ? ` (${message.reason})` : ""}`);
      break;
    case "error":
      callerStatus(message.message, "bad");
      if (!caller.callId) endCall(message.message);
      break;
    default:
      break;
  }
}

function sendKey(digit) {
  if (caller.ws && caller.callId) caller.ws.send(JSON.stringify({ type: "dtmf", digit }));
}

function sendTyped() {
  const box = $("typed");
  const text = box.value.trim();
  if (!text || !caller.ws || !caller.callId) return;
  caller.ws.send(JSON.stringify({ type: "say", text }));
  box.value = "";
}

function hangUp() {
  if (caller.ws && caller.ws.readyState === WebSocket.OPEN) {
    caller.ws.send(JSON.stringify({ type: "hangup" }));
  }
}

function toggleMute() {
  caller.muted = !caller.muted;
  $("mute").textContent = caller.muted ? "Unmute" : "Mute";
  $("mute").classList.toggle("on", caller.muted);
  if (caller.ws && caller.ws.readyState === WebSocket.OPEN) {
    caller.ws.send(JSON.stringify({ type: "mute", on: caller.muted }));
  }
}

function endCall(text) {
  const ws = caller.ws;
  caller.ws = null;
  caller.callId = null;
  caller.mode = null;
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
  if (caller.capture) caller.capture.port.onmessage = null;
  caller.capture = null;
  if (caller.mic) for (const track of caller.mic.getTracks()) track.stop();
  caller.mic = null;
  caller.muted = false;
  $("mute").textContent = "Mute";
  callerLive(false);
  if (text) callerStatus(text);
  else if (!$("caller-status").textContent.startsWith("Call ended")) callerStatus("Not on a call.");
}
