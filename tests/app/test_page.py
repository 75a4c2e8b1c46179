"""The page (/) in a real headless Chromium against the real server: it polls /health and shows,
per replica, its hostname, version and share of the last answers; it loads nothing from elsewhere,
shows what the network sends as text, and says so when the service stops answering.

The rollout seen live through a load balancer is in tests/e2e/test_local_stack.py."""

from __future__ import annotations

import socket

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
