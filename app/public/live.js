// The live view of app/public/index.html: polls /health and draws, per replica, its hostname,
// version and share of the last answers. No external assets: the service may run where nothing
// else is reachable. Everything from the network is written as text, never as HTML.
"use strict";

const POLL_INTERVAL_MS = 200;
const WINDOW = 60;            // answers the shares are taken over
const REQUEST_TIMEOUT_MS = 2000;
const MAX_ANSWER_BYTES = 4096;  // the health document is tens of bytes (the CLI allows 64 KiB)
const MAX_SHOWN_CHARS = 64;     // longer names are cut on the page (the full one in a tooltip)
// ?connection=close: the next poll opens a new connection, which a per-connection balancer
// (swarm's routing mesh) may send to another replica; a kept-alive one would stay on one.
const HEALTH_URL = "/health?connection=close";

const answers = [];           // {hostname, version, at} or {failure, at}, newest last

// The body's text, or null past MAX_ANSWER_BYTES (read no further: a hostile answer may be endless).
async function readLimited(response) {
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_ANSWER_BYTES) {
      reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(await new Blob(chunks).arrayBuffer());
}

function nonEmptyText(value) {
  return typeof value === "string" && value.length > 0;
}

async function askOnce() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(HEALTH_URL, { cache: "no-store", signal: controller.signal });
  } catch (error) {
    clearTimeout(timer);
    return { failure: error.name === "AbortError" ? "no answer within 2 s" : "no answer" };
  }
  try {
    if (!response.ok) return { failure: `HTTP ${response.status}` };
    const text = await readLimited(response);
    if (text === null) return { failure: `an answer over ${MAX_ANSWER_BYTES} bytes` };
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      return { failure: "an answer that is not JSON" };
    }
    if (!body || !nonEmptyText(body.hostname) || !nonEmptyText(body.version)) {
      return { failure: "an answer without hostname and version" };
    }
    return { hostname: body.hostname, version: body.version };
  } catch (error) {
    return { failure: error.name === "AbortError" ? "no answer within 2 s" : "an answer cut short" };
  } finally {
    clearTimeout(timer);
  }
}

function record(answer) {
  answers.push({ ...answer, at: Date.now() });
  if (answers.length > WINDOW) answers.splice(0, answers.length - WINDOW);
}

// Pure: the window's answers summarised per replica and per version, most answers first.
function summarise(window) {
  const replicas = new Map();
  const versions = new Map();
  let failures = 0;
  let lastFailure = "";
  for (const answer of window) {
    if (answer.failure) {
      failures += 1;
      lastFailure = answer.failure;
      continue;
    }
    const replica = replicas.get(answer.hostname) || { hostname: answer.hostname, count: 0 };
    replica.count += 1;
    replica.version = answer.version;  // the newest answer says which version it runs now
    replica.at = answer.at;
    replicas.set(answer.hostname, replica);
    versions.set(answer.version, (versions.get(answer.version) || 0) + 1);
  }
  const byCount = (a, b) => b.count - a.count || (a.hostname || a.version).localeCompare(b.hostname || b.version);
  return {
    total: window.length,
    failures,
    lastFailure,
    replicas: [...replicas.values()].sort(byCount),
    versions: [...versions].map(([version, count]) => ({ version, count })).sort(byCount),
  };
}

// What a name from the network looks like on the page: control and direction-changing characters
// (which could make one hostname pass for another) as \u{…}, and at most MAX_SHOWN_CHARS of it.
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/gu;

function visible(text) {
  const shown = text.replace(INVISIBLE, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
  return shown.length > MAX_SHOWN_CHARS ? `${shown.slice(0, MAX_SHOWN_CHARS)}…` : shown;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function nameCell(row, name, className) {
  const td = cell(row, visible(name), className);
  td.title = name;
  return td;
}

function percent(count, total) {
  return `${Math.round((100 * count) / total)}%`;
}

function share(row, count, total) {
  const td = cell(row, "", "share");
  const meter = document.createElement("meter");
  meter.min = 0;
  meter.max = total;
  meter.value = count;
  td.append(meter, ` ${percent(count, total)}`);
}

function render(summary, now) {
  const status = document.getElementById("summary");
  const answered = summary.total - summary.failures;
  status.textContent =
    `${answered} of the last ${summary.total} requests answered by ${summary.replicas.length} ` +
    `replica${summary.replicas.length === 1 ? "" : "s"}` +
    (summary.failures ? `; ${summary.failures} failed (last: ${summary.lastFailure})` : "");
  status.className = summary.failures ? "failing" : "";

  const rows = document.getElementById("replicas");
  rows.replaceChildren();
  for (const replica of summary.replicas) {
    const row = rows.insertRow();
    row.dataset.hostname = replica.hostname;
    row.dataset.version = replica.version;
    row.dataset.count = String(replica.count);
    nameCell(row, replica.hostname, "hostname");
    nameCell(row, replica.version, "version");
    share(row, replica.count, answered);
    cell(row, `${((now - replica.at) / 1000).toFixed(1)} s ago`, "age");
  }

  const list = document.getElementById("versions");
  list.replaceChildren();
  for (const { version, count } of summary.versions) {
    const item = document.createElement("li");
    item.dataset.version = version;
    item.dataset.count = String(count);
    const name = document.createElement("code");
    name.textContent = visible(version);
    name.title = version;
    item.append(name, ` ${percent(count, answered)} of answers`);
    list.append(item);
  }
}

async function poll() {
  // A hidden tab asks nothing: many open tabs would otherwise load the service for no one.
  if (document.visibilityState !== "hidden") {
    record(await askOnce());
    render(summarise(answers), Date.now());
  }
  setTimeout(poll, POLL_INTERVAL_MS);
}

document.getElementById("window-size").textContent = String(WINDOW);
poll();
