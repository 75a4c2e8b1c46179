"""The page (/) in a real headless Chromium against the real server: it polls /health and shows,
per replica, its hostname, version and share of the last answers, and the last two minutes as a
timeline (a row of marks per replica, coloured by version, and a row of failed polls); it loads
nothing from elsewhere, shows what the network sends as text, and says so when the service stops
answering.

The rollout seen live through a load balancer is in tests/e2e/test_local_stack.py."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.app.conftest import start_server, stop_server
from tests.support.browser import chromium, read_page, read_timeline
from tests.support.net import wait_until

pytestmark = pytest.mark.app


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def answered(driver, at_least: int) -> dict | None:
    page = read_page(driver)
    return page if sum(r["count"] for r in page["replicas"]) >= at_least else None


def marked(driver, at_least: int, **like) -> dict | None:
    """The timeline once it has `at_least` marks whose fields are `like` (version="v2", ...)."""
    timeline = read_timeline(driver)
    marks = [m for m in timeline["marks"] if all(m[key] == value for key, value in like.items())]
    return timeline if len(marks) >= at_least else None


def colour_of(timeline: dict) -> dict[str, str]:
    """version -> the colour its legend shows."""
    return {item["version"]: item["colour"] for item in timeline["legend"]}


SPAN_MS = 120_000
FIRST_COLOUR, FAILURE_COLOUR = "rgb(0, 114, 178)", "rgb(192, 0, 0)"  # the palette's first, and red


def test_the_page_shows_the_replica_that_answers_its_version_and_share(browser, server):
    browser.get(f"{server.url}/")
    page = wait_until(lambda: answered(browser, 10), 30, interval=0.2, what="10 answers on the page")
    (replica,) = page["replicas"]
    assert (replica["hostname"], replica["version"]) == (socket.gethostname(), "v3")
    assert "100%" in replica["text"]
    assert page["versions"] == [{"version": "v3", "count": replica["count"]}]
    count = replica["count"]
    assert page["summary"].startswith(f"{count} of the last {count} requests answered by 1 replica")


def test_the_page_loads_nothing_from_elsewhere(browser, server):
    browser.get_log("browser")  # read and dropped: what earlier tests' pages logged
    browser.get(f"{server.url}/")
    page = wait_until(lambda: answered(browser, 3), 30, interval=0.2, what="answers on the page")
    wait_until(lambda: marked(browser, 3), 30, interval=0.2, what="marks on the timeline")
    assert page["resources"], "the page loaded no resource at all"
    assert all(name.startswith(f"{server.url}/") for name in page["resources"]), page["resources"]
    # A Content-Security-Policy violation or a script error is a console error.
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def test_the_timeline_marks_each_answer_on_its_replicas_row_in_its_versions_colour(browser, server):
    browser.get(f"{server.url}/")
    timeline = wait_until(lambda: marked(browser, 10), 30, interval=0.2, what="10 marks on the timeline")
    hostname = socket.gethostname()
    assert [(row["replica"], row["failures"]) for row in timeline["rows"]] == [(hostname, False), (None, True)]
    assert [row["label"] for row in timeline["rows"]] == [hostname, "failed polls: none"]
    assert timeline["legend"] == [{"version": "v3", "text": "v3", "colour": FIRST_COLOUR}]
    assert {(m["replica"], m["row_replica"], m["version"], m["colour"]) for m in timeline["marks"]} == {
        (hostname, hostname, "v3", FIRST_COLOUR)
    }
    # Time runs left to right over the last 120 s, now at the right edge: each mark ends at its age.
    assert timeline["span"] == SPAN_MS
    for mark in timeline["marks"]:
        age = timeline["now"] - mark["at"]
        assert 0 <= age <= SPAN_MS
        assert mark["right"] == pytest.approx(1 - age / SPAN_MS, abs=0.005)
    assert max(m["right"] for m in timeline["marks"]) > 0.99


def test_the_timeline_shows_a_rollout_old_version_then_new_in_order_of_first_appearance(browser):
    health = {"body": b'{"hostname":"web-a","version":"v1"}'}
    with hostile_front(lambda: health["body"]) as url:
        browser.get(f"{url}/")
        wait_until(lambda: marked(browser, 5), 30, interval=0.2, what="marks of v1")
        health["body"] = b'{"hostname":"web-b","version":"v2"}'
        timeline = wait_until(lambda: marked(browser, 5, version="v2"), 30, interval=0.2, what="marks of v2")
    assert [row["replica"] for row in timeline["rows"]] == ["web-a", "web-b", None]
    assert [item["version"] for item in timeline["legend"]] == ["v1", "v2"]
    colours = colour_of(timeline)
    assert colours["v1"] == FIRST_COLOUR and colours["v2"] not in (FIRST_COLOUR, FAILURE_COLOUR)
    by_version = {version: [m for m in timeline["marks"] if m["version"] == version] for version in colours}
    assert {(m["row_replica"], m["colour"]) for m in by_version["v1"]} == {("web-a", colours["v1"])}
    assert {(m["row_replica"], m["colour"]) for m in by_version["v2"]} == {("web-b", colours["v2"])}
    assert max(m["at"] for m in by_version["v1"]) < min(m["at"] for m in by_version["v2"])


# The page's clock moved on by arguments[0] ms: two minutes pass without the test waiting them.
SHIFT_CLOCK = """
const real = window.realNow || (window.realNow = Date.now.bind(Date));
Date.now = () => real() + arguments[0];
"""


def test_the_timeline_keeps_two_minutes_of_answers_and_drops_older_ones(browser, server):
    browser.get(f"{server.url}/")
    first = wait_until(lambda: marked(browser, 5), 30, interval=0.2, what="marks on the timeline")
    earliest = min(m["at"] for m in first["marks"])

    browser.execute_script(SHIFT_CLOCK, 100_000)
    later = wait_until(
        lambda: (t := marked(browser, 5)) and t["now"] > earliest + 100_000 and t, 30, interval=0.2, what="a redraw"
    )
    # 100 s old: still drawn, near the left edge (100 s of 120 from the right).
    oldest = min(later["marks"], key=lambda m: m["at"])
    assert oldest["at"] == earliest
    assert oldest["right"] == pytest.approx(1 - (later["now"] - earliest) / SPAN_MS, abs=0.005)
    assert oldest["right"] < 1 / 6 + 0.005

    browser.execute_script(SHIFT_CLOCK, 125_000)
    last = wait_until(
        lambda: (t := marked(browser, 1)) and t["now"] > earliest + 125_000 and t, 30, interval=0.2, what="a redraw"
    )
    # Older than 120 s: gone; what answered once the clock was 100 s on is still there.
    assert all(last["now"] - m["at"] <= SPAN_MS for m in last["marks"])
    assert min(m["at"] for m in last["marks"]) >= earliest + 100_000
    assert sum(m["at"] < last["now"] - 25_000 for m in last["marks"]) > 0


def test_a_hostile_version_is_shown_as_text_not_markup(browser, tmp_path):
    version = '<img src=x onerror="document.title=`owned`">'
    hostile = start_server(tmp_path, VER=version)
    try:
        browser.get(f"{hostile.url}/")
        page = wait_until(lambda: answered(browser, 3), 30, interval=0.2, what="answers on the page")
        assert [r["version"] for r in page["replicas"]] == [version]
        assert version in page["replicas"][0]["text"]
        timeline = wait_until(lambda: marked(browser, 3), 30, interval=0.2, what="marks on the timeline")
        # In the legend as text beside its swatch, on the marks as data: nowhere as markup.
        assert [(item["version"], item["text"]) for item in timeline["legend"]] == [(version, version)]
        assert {m["version"] for m in timeline["marks"]} == {version}
        legend = "return [...document.querySelectorAll('#timeline-legend li *')].map(e => e.localName)"
        assert browser.execute_script(legend) == ["span", "code"]
        assert browser.execute_script("return document.querySelectorAll('#live img, #live image').length") == 0
        assert browser.title == "restdemo"
    finally:
        stop_server(hostile)


def test_the_page_says_when_the_service_stops_answering(browser, tmp_path):
    stopping = start_server(tmp_path, VER="v7")
    browser.get(f"{stopping.url}/")
    wait_until(lambda: answered(browser, 5), 30, interval=0.2, what="answers on the page")
    stop_server(stopping)
    page = wait_until(
        lambda: (p := read_page(browser)) and "failed (last: no answer)" in p["summary"] and p,
        30,
        interval=0.2,
        what="the page reporting failed requests",
    )
    # The replica seen before is still shown with its share of the window, beside the failures.
    assert [r["version"] for r in page["replicas"]] == ["v7"]
    assert browser.execute_script("return document.getElementById('summary').className") == "failing"
    # On the timeline: the replica's marks, then red ones in the failures' row.
    timeline = wait_until(lambda: marked(browser, 3, failure="no answer"), 30, interval=0.2, what="failed polls")
    failures = [m for m in timeline["marks"] if m["failure"]]
    assert all(m["in_failure_row"] and m["colour"] == FAILURE_COLOUR and not m["replica"] for m in failures)
    assert timeline["rows"][-1] == {"replica": None, "failures": True, "label": f"failed polls: {len(failures)}"}
    answers = [m for m in timeline["marks"] if not m["failure"]]
    assert {m["version"] for m in answers} == {"v7"}
    assert max(m["at"] for m in answers) < min(m["at"] for m in failures)


PUBLIC = Path(__file__).resolve().parents[2] / "app" / "public"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@contextmanager
def hostile_front(health_body: bytes | Callable[[], bytes]):
    """The page's own files, and a /health that answers `health_body` (what a broken or hostile
    thing in front of the service might send), or what it returns at each request."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            path = self.path.partition("?")[0]
            if path == "/health":
                body = health_body() if callable(health_body) else health_body
                kind = "application/json"
            else:
                file = PUBLIC / ("index.html" if path == "/" else path.lstrip("/"))
                body, kind = file.read_bytes(), TYPES[file.suffix]
            self.send_response(200)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def failing_with(browser, reason: str) -> dict | None:
    page = read_page(browser)
    return page if f"failed (last: {reason})" in page["summary"] else None


@pytest.mark.parametrize(
    "body,reason",
    [
        (b'{"hostname":"' + b"h" * 2_000_000 + b'","version":"v1"}', "an answer over 4096 bytes"),
        (b"<html>ok</html>", "an answer that is not JSON"),
        (b"null", "an answer without hostname and version"),
        (b'{"hostname":"","version":""}', "an answer without hostname and version"),
    ],
    ids=["2-mb", "not-json", "null", "empty-names"],
)
def test_a_bad_answer_is_a_failure_not_a_replica(browser, body, reason):
    with hostile_front(body) as url:
        browser.get(f"{url}/")
        page = wait_until(lambda: failing_with(browser, reason), 30, interval=0.2, what=f"the page saying {reason}")
    assert page["replicas"] == []


def test_a_name_cannot_pass_for_another_or_stretch_the_page(browser):
    spoof = "web-1\u202egnp.exe"  # RIGHT-TO-LEFT OVERRIDE: would show as web-1exe.png
    long_version = "v" + "9" * 300
    body = f'{{"hostname":"{spoof}","version":"{long_version}"}}'.encode()
    browser.set_window_size(420, 800)
    try:
        with hostile_front(body) as url:
            browser.get(f"{url}/")
            page = wait_until(lambda: answered(browser, 3), 30, interval=0.2, what="answers on the page")
            timeline = wait_until(lambda: marked(browser, 3), 30, interval=0.2, what="marks on the timeline")
            widths = browser.execute_script(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
                " document.getElementById('timeline').getBoundingClientRect().right]"
            )
    finally:
        browser.set_window_size(1200, 800)
    (replica,) = page["replicas"]
    assert replica["hostname"] == "web-1\u202egnp.exe"  # the data as sent
    assert "web-1\\u{202e}gnp.exe" in replica["text"]  # the text as shown
    assert "v" + "9" * 63 + "…" in replica["text"] and "9" * 64 not in replica["text"]
    # The same on the timeline: its row's label and its legend.
    assert timeline["rows"][0] == {"replica": spoof, "failures": False, "label": "web-1\\u{202e}gnp.exe"}
    assert [item["text"] for item in timeline["legend"]] == ["v" + "9" * 63 + "…"]
    assert widths[0] <= widths[1] and widths[2] <= widths[1], widths


def test_shares_are_of_the_answers_and_failures_are_counted_apart(browser, tmp_path):
    stopping = start_server(tmp_path, VER="v8")
    browser.get(f"{stopping.url}/")
    wait_until(lambda: answered(browser, 10), 30, interval=0.2, what="answers on the page")
    stop_server(stopping)
    page = wait_until(lambda: failing_with(browser, "no answer"), 30, interval=0.2, what="failures counted")
    assert page["versions"][0]["version"] == "v8"
    assert "v8 100% of answers" in browser.find_element("id", "versions").text
