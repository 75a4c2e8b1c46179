// The live view of app/public/index.html: polls /health and draws, per replica, its hostname,
// version and share of the last answers. No external assets: the service may run where nothing
// else is reachable. Everything from the network is written as text, never as HTML.
"use strict";

const POLL_INTERVAL_MS = 200;
const WINDOW = 60;            // answers the shares are taken over
const REQUEST_TIMEOUT_MS = 2000;
// ?connection=close: the next poll opens a new connection, which a per-connection balancer
// (swarm's routing mesh) may send to another replica; a kept-alive one would stay on one.
const HEALTH_URL = "/health?connection=close";

const answers = [];           // {hostname, version, at} or {failure, at}, newest last

async function askOnce() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(HEALTH_URL, { cache: "no-store", signal: controller.signal });
    if (!response.ok) return { failure: `HTTP ${response.status}` };
    const body = await response.json();
    if (typeof body.hostname !== "string" || typeof body.version !== "string") {
      return { failure: "an answer without hostname and version" };
    }
    return { hostname: body.hostname, version: body.version };
  } catch (error) {
    return { failure: error.name === "AbortError" ? "no answer within 2 s" : "no answer" };
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

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
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
    cell(row, replica.hostname, "hostname");
    cell(row, replica.version, "version");
    share(row, replica.count, summary.total);
    cell(row, `${((now - replica.at) / 1000).toFixed(1)} s ago`, "age");
  }

  const list = document.getElementById("versions");
  list.replaceChildren();
  for (const { version, count } of summary.versions) {
    const item = document.createElement("li");
    item.dataset.version = version;
    item.dataset.count = String(count);
    const name = document.createElement("code");
    name.textContent = version;
    item.append(name, ` ${percent(count, summary.total)} of answers`);
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
