"""The page (/) in a real headless Chromium against the real server: it polls /health and shows,
per replica, its hostname, version and share of the last answers; it loads nothing from elsewhere,
shows what the network sends as text, and says so when the service stops answering.

The rollout seen live through a load balancer is in tests/e2e/test_local_stack.py."""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.app.conftest import start_server, stop_server
from tests.support.browser import chromium, read_page
from tests.support.net import wait_until

pytestmark = pytest.mark.app


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def answered(driver, at_least: int) -> dict | None:
    page = read_page(driver)
    return page if sum(r["count"] for r in page["replicas"]) >= at_least else None


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
    browser.get(f"{server.url}/")
    page = wait_until(lambda: answered(browser, 3), 30, interval=0.2, what="answers on the page")
    assert page["resources"], "the page loaded no resource at all"
    assert all(name.startswith(f"{server.url}/") for name in page["resources"]), page["resources"]
    # A Content-Security-Policy violation or a script error is a console error.
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def test_a_hostile_version_is_shown_as_text_not_markup(browser, tmp_path):
    version = '<img src=x onerror="document.title=`owned`">'
    hostile = start_server(tmp_path, VER=version)
    try:
        browser.get(f"{hostile.url}/")
        page = wait_until(lambda: answered(browser, 3), 30, interval=0.2, what="answers on the page")
        assert [r["version"] for r in page["replicas"]] == [version]
        assert version in page["replicas"][0]["text"]
        assert browser.execute_script("return document.querySelectorAll('#live img').length") == 0
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


PUBLIC = Path(__file__).resolve().parents[2] / "app" / "public"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@contextmanager
def hostile_front(health_body: bytes):
    """The page's own files, and a /health that answers `health_body` (what a broken or hostile
    thing in front of the service might send)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            path = self.path.partition("?")[0]
            if path == "/health":
                body, kind = health_body, "application/json"
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
            widths = browser.execute_script(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
    finally:
        browser.set_window_size(1200, 800)
    (replica,) = page["replicas"]
    assert replica["hostname"] == "web-1\u202egnp.exe"  # the data as sent
    assert "web-1\\u{202e}gnp.exe" in replica["text"]  # the text as shown
    assert "v" + "9" * 63 + "…" in replica["text"] and "9" * 64 not in replica["text"]
    assert widths[0] <= widths[1], widths


def test_shares_are_of_the_answers_and_failures_are_counted_apart(browser, tmp_path):
    stopping = start_server(tmp_path, VER="v8")
    browser.get(f"{stopping.url}/")
    wait_until(lambda: answered(browser, 10), 30, interval=0.2, what="answers on the page")
    stop_server(stopping)
    page = wait_until(lambda: failing_with(browser, "no answer"), 30, interval=0.2, what="failures counted")
    assert page["versions"][0]["version"] == "v8"
    assert "v8 100% of answers" in browser.find_element("id", "versions").text
