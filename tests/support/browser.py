"""A real headless browser for the page's tests: Debian's Chromium driven through its ChromeDriver
(Selenium). Installed by scripts/browser.sh; missing, it fails the tier in CI and skips elsewhere."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.docker_engine import require_tool

INSTALL = "scripts/browser.sh: apt-get install chromium chromium-driver"
# Headless as root in a container; no traffic of the browser's own (these machines' network is
# closed: without them Chromium retries Google's hosts at every start).
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@contextmanager
def chromium() -> Iterator[object]:
    """A Selenium WebDriver on a fresh profile; quit afterwards."""
    binary = require_tool("chromium", INSTALL)
    driver_binary = require_tool("chromedriver", INSTALL)
    from selenium import webdriver

    with tempfile.TemporaryDirectory(prefix="restdemo-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary  # both paths given: Selenium Manager downloads nothing
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_binary))
        try:
            yield driver
        finally:
            driver.quit()


# What the page shows, read from the DOM its script draws (data-* attributes carry the values).
READ_PAGE = """
return {
  summary: document.getElementById("summary").textContent,
  replicas: [...document.querySelectorAll("#replicas tr")].map(row => ({
    hostname: row.dataset.hostname, version: row.dataset.version, count: Number(row.dataset.count),
    text: row.textContent})),
  versions: [...document.querySelectorAll("#versions li")].map(item => ({
    version: item.dataset.version, count: Number(item.dataset.count)})),
  resources: performance.getEntriesByType("resource").map(entry => entry.name),
};
"""


def read_page(driver) -> dict:
    return driver.execute_script(READ_PAGE)


# The timeline as drawn: the time of the drawing and its span (ms), its rows, every mark with where
# its right edge is (0 the left edge of the timeline, 1 the right), and the legend; colours as painted.
READ_TIMELINE = """
const svg = document.getElementById("timeline");
const box = svg.getBoundingClientRect();
return {
  now: Number(svg.dataset.now), span: Number(svg.dataset.span),
  rows: [...svg.querySelectorAll(".row")].map(row => ({
    replica: row.dataset.replica ?? null, failures: row.classList.contains("failures"),
    label: row.querySelector(".label").firstChild.textContent})),
  marks: [...svg.querySelectorAll(".mark")].map(mark => ({
    at: Number(mark.dataset.at), replica: mark.dataset.replica ?? null, version: mark.dataset.version ?? null,
    failure: mark.dataset.failure ?? null, colour: getComputedStyle(mark).fill,
    row_replica: mark.closest(".row").dataset.replica ?? null,
    in_failure_row: mark.closest(".row").classList.contains("failures"),
    right: (mark.getBoundingClientRect().right - box.left) / box.width})),
  legend: [...document.querySelectorAll("#timeline-legend li")].map(item => ({
    version: item.dataset.version, text: item.textContent,
    colour: getComputedStyle(item.querySelector(".swatch")).backgroundColor})),
};
"""


def read_timeline(driver) -> dict:
    return driver.execute_script(READ_TIMELINE)
