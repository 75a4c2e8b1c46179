"""The CLI's pure parts: URL splitting and --format rendering."""

import pytest

from restdemo.cli import UsageError, render, split_url

pytestmark = pytest.mark.app


@pytest.mark.parametrize(
    "url,expected",
    [
        ("http://127.0.0.1:8000", ("http", "127.0.0.1", 8000, "")),
        ("http://localhost", ("http", "localhost", 80, "")),
        ("http://svc:9000/", ("http", "svc", 9000, "")),
        ("http://svc:9000/api/v1/", ("http", "svc", 9000, "/api/v1")),
        ("HTTP://svc:9000", ("http", "svc", 9000, "")),
        ("http://[::1]:8000", ("http", "::1", 8000, "")),
        # A load balancer's HTTPS in front (make up and make status of a stack with a domain).
        ("https://app.example.com", ("https", "app.example.com", 443, "")),
        ("HTTPS://app.example.com:8443/", ("https", "app.example.com", 8443, "")),
    ],
)
def test_split_url(url, expected):
    assert split_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://x", "x:8000", "http://", "http://x:port", "http://:80", "https://x:0"])
def test_split_url_rejects_what_it_cannot_reach(url):
    with pytest.raises(UsageError, match="--url must be http://host"):
        split_url(url)


def test_render_fields_json_and_escapes():
    doc = {"hostname": "abc", "version": "v3"}
    assert render("{{.hostname}}/{{ .version }}", doc) == "abc/v3"
    assert render("{{json .}}", doc) == '{"hostname":"abc","version":"v3"}'
    assert render("{{json .version}}\\n", doc) == '"v3"\n'
    assert render("plain text", doc) == "plain text"


def test_render_prints_what_docker_prints():
    """Go's text/template, as docker's --format uses it: `{{.}}` of a map is `map[k:v ...]` (keys
    sorted), text outside actions is kept, a lone `}}` included."""
    doc = {"hostname": "abc", "version": "v3"}
    assert render("{{.}}", doc) == "map[hostname:abc version:v3]"
    assert render("}} {{ .hostname }} }}", doc) == "}} abc }}"


@pytest.mark.parametrize(
    "template", ["{{.nope}}", "{{hostname}}", "{{{.hostname}}}", "{{.hostname}", "{{ .hostname | upper }}", "{{"]
)
def test_render_rejects_bad_templates(template):
    with pytest.raises(UsageError):
        render(template, {"hostname": "abc", "version": "v3"})
