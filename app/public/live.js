// The live view of app/public/index.html: polls /health and draws, per replica, its hostname,
// version and share of the last answers, and the last two minutes as a timeline. No external
// assets: the service may run where nothing else is reachable. Everything from the network is
// written as text, never as HTML.
"use strict";

const POLL_INTERVAL_MS = 200;
const WINDOW = 60;            // answers the shares are taken over
const TIMELINE_MS = 120_000;  // the timeline's span: long enough to hold a whole rollout
const MAX_KEPT = 1000;        // 600 answers at 5 a second over 120 s, and room: memory stays bounded
const DRAW_INTERVAL_MS = 500; // the timeline is redrawn twice a second, not at every answer
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

// Kept: the table's last WINDOW answers, and those the timeline still shows; never more than MAX_KEPT.
function record(answer, now) {
  answers.push({ ...answer, at: now });
  let stale = 0;
  while (
    answers.length - stale > WINDOW &&
    (answers.length - stale > MAX_KEPT || answers[stale].at < now - TIMELINE_MS)
  ) {
    stale += 1;
  }
  answers.splice(0, stale);
  if (answer.version) colourOf(answer.version);
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

// The timeline: an inline SVG, one row per replica (by first appearance in the last two minutes)
// and a last row of failed polls; time runs left to right, now at the right edge. Labels are in
// pixels (readable at any width); each row's marks are in a nested SVG whose viewBox is the time
// span in milliseconds, stretched to the width, so it never overflows a narrow window.

const SVG_NS = "http://www.w3.org/2000/svg";
// Okabe-Ito (told apart with the common colour blindnesses), without its red: red is for failures.
const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#8c564b", "#7f7f7f", "#bcbd22"];
const FAILURE_COLOUR = "#c00000";
const MAX_COLOURED = 100;     // versions remembered; an answer may bring a new one each time
const LABEL_HEIGHT = 15;      // a row: its label, then its band of marks
const BAND_HEIGHT = 12;
const ROW_HEIGHT = LABEL_HEIGHT + BAND_HEIGHT + 5;
const AXIS_HEIGHT = 16;
const MARK_MS = 400;          // a mark's width: two polls, so one replica's answers join into a band
const TICK_MS = 30_000;

// version -> colour, by order of first appearance since the page opened: a version keeps its
// colour while the page is open, so a rollback shows in the colour the old version had.
const colours = new Map();
let versionsSeen = 0;

function colourOf(version) {
  if (!colours.has(version)) {
    colours.set(version, PALETTE[versionsSeen % PALETTE.length]);
    versionsSeen += 1;
    if (colours.size > MAX_COLOURED) forgetColours();
  }
  return colours.get(version);
}

function forgetColours() {
  const kept = new Set(answers.map((answer) => answer.version));
  for (const version of colours.keys()) if (!kept.has(version)) colours.delete(version);
}

// An SVG element; its attributes are the page's own (names from the network go in data-* or text).
function svgElement(name, attributes = {}) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

// A band `height` high whose x axis is the last TIMELINE_MS milliseconds, stretched to the width.
function timeBand(y, height) {
  return svgElement("svg", {
    x: 0, y, width: "100%", height, viewBox: `0 0 ${TIMELINE_MS} ${height}`, preserveAspectRatio: "none",
  });
}

function mark(answer, since, colour) {
  // Its right edge at the answer's time: the newest answer touches the right edge, "now".
  const rect = svgElement("rect", {
    class: "mark", x: answer.at - since - MARK_MS, width: MARK_MS, height: BAND_HEIGHT, fill: colour,
  });
  rect.dataset.at = String(answer.at);
  if (answer.failure) {
    rect.dataset.failure = answer.failure;
  } else {
    rect.dataset.replica = answer.hostname;
    rect.dataset.version = answer.version;
  }
  return rect;
}

function timelineRow(index, label, title, marks) {
  const y = index * ROW_HEIGHT;
  const row = svgElement("g", { class: "row" });
  const text = svgElement("text", { class: "label", x: 0, y: y + LABEL_HEIGHT - 4 });
  text.textContent = label;
  const tooltip = svgElement("title");
  tooltip.textContent = title;
  text.append(tooltip);
  const band = timeBand(y + LABEL_HEIGHT, BAND_HEIGHT);
  band.append(svgElement("rect", { class: "band", width: TIMELINE_MS, height: BAND_HEIGHT }), ...marks);
  row.append(text, band);
  return row;
}

// Lines every TICK_MS behind the rows, and their times under them.
function axis(rowsHeight) {
  const group = svgElement("g", { class: "axis" });
  const grid = timeBand(0, rowsHeight);
  for (let at = 0; at <= TIMELINE_MS; at += TICK_MS) {
    // non-scaling-stroke: one pixel wide, whatever the stretch of the time axis.
    grid.append(svgElement("line", { x1: at, x2: at, y1: 0, y2: rowsHeight, "vector-effect": "non-scaling-stroke" }));
  }
  group.append(grid);
  for (let at = 0; at <= TIMELINE_MS; at += TICK_MS) {
    const ago = (TIMELINE_MS - at) / 1000;
    const anchor = at === 0 ? "start" : at === TIMELINE_MS ? "end" : "middle";
    const tick = svgElement("text", {
      class: "tick", x: `${(100 * at) / TIMELINE_MS}%`, y: rowsHeight + AXIS_HEIGHT - 4, "text-anchor": anchor,
    });
    tick.textContent = ago === 0 ? "now" : at === 0 ? `${ago} s ago` : `${ago} s`;
    group.append(tick);
  }
  return group;
}

function drawLegend(versions) {
  const legend = document.getElementById("timeline-legend");
  legend.replaceChildren();
  for (const version of versions) {
    const item = document.createElement("li");
    item.dataset.version = version;
    item.dataset.colour = colourOf(version);
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.backgroundColor = colourOf(version);  // the CSSOM, which the CSP allows
    const name = document.createElement("code");
    name.textContent = visible(version);
    name.title = version;
    item.append(swatch, name);
    legend.append(item);
  }
}

function drawTimeline(now) {
  const since = now - TIMELINE_MS;
  const replicas = new Map();  // hostname -> its marks, by first appearance in the span
  const failures = [];
  const versions = new Set();
  for (const answer of answers) {
    if (answer.at < since || answer.at > now) continue;  // kept for the table, older than the span
    if (answer.failure) {
      failures.push(mark(answer, since, FAILURE_COLOUR));
      continue;
    }
    if (!replicas.has(answer.hostname)) replicas.set(answer.hostname, []);
    replicas.get(answer.hostname).push(mark(answer, since, colourOf(answer.version)));
    versions.add(answer.version);
  }

  const rows = [];
  for (const [hostname, marks] of replicas) {
    const row = timelineRow(rows.length, visible(hostname), `${hostname}: ${marks.length} answers`, marks);
    row.dataset.replica = hostname;
    rows.push(row);
  }
  const failed = timelineRow(rows.length, `failed polls: ${failures.length || "none"}`, "failed polls", failures);
  failed.classList.add("failures");
  rows.push(failed);

  const rowsHeight = rows.length * ROW_HEIGHT;
  const svg = document.getElementById("timeline");
  svg.setAttribute("height", String(rowsHeight + AXIS_HEIGHT));
  svg.dataset.now = String(now);
  svg.dataset.span = String(TIMELINE_MS);
  document.getElementById("timeline-rows").replaceChildren(axis(rowsHeight), ...rows);
  // In order of first appearance: the Map's order is the order versions were first seen.
  drawLegend([...colours.keys()].filter((version) => versions.has(version)));
}

async function poll() {
  // A hidden tab asks nothing: many open tabs would otherwise load the service for no one.
  if (document.visibilityState !== "hidden") {
    const answer = await askOnce();
    record(answer, Date.now());
    render(summarise(answers.slice(-WINDOW)), Date.now());
  }
  setTimeout(poll, POLL_INTERVAL_MS);
}

function drawWhenVisible() {
  if (document.visibilityState !== "hidden") drawTimeline(Date.now());
}

document.getElementById("window-size").textContent = String(WINDOW);
document.getElementById("timeline-seconds").textContent = String(TIMELINE_MS / 1000);
poll();
drawWhenVisible();
setInterval(drawWhenVisible, DRAW_INTERVAL_MS);
