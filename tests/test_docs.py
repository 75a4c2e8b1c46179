"""The documentation: a short README, links that lead somewhere, and user documents free of run
dates, former sizes and issue numbers (those belong in docs/benchmarks.md and CHANGELOG.md)."""

from __future__ import annotations

import re

import pytest

from tests.support.pulumi_program import REPO

pytestmark = pytest.mark.unit

DOCUMENTS = sorted(
    p.relative_to(REPO).as_posix()
    for p in [REPO / "README.md", REPO / "CHANGELOG.md", REPO / "app" / "README.md", *REPO.glob("docs/**/*.md")]
)
FOR_USERS = [d for d in DOCUMENTS if d not in ("CHANGELOG.md", "docs/benchmarks.md") and not d.startswith("docs/adr/")]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but hyphens dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_readme_is_a_map_of_at_most_150_lines():
    assert len((REPO / "README.md").read_text().splitlines()) <= 150


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(document):
    path = REPO / document
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{document}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked.read_text()), f"{document}: {target}"


@pytest.mark.parametrize("document", FOR_USERS)
def test_user_documents_hold_no_run_dates_former_sizes_or_issue_numbers(document):
    text = (REPO / document).read_text()
    assert not re.findall(r"\b20\d\d-\d\d-\d\d\b", text), "run dates belong in docs/benchmarks.md"
    assert not re.findall(r"\bwas [\d.]+ ?[MG]B\b", text), "former sizes belong in docs/benchmarks.md"
    assert not re.findall(r"(?<![\w/&])#\d+\b", text), "issue numbers belong in commit messages"


def test_the_anchor_rule_is_githubs():
    assert anchors("## Certificates: renewal and the CA\n## The policy pack (`policy/`)\n") == {
        "certificates-renewal-and-the-ca",
        "the-policy-pack-policy",
    }


@pytest.mark.parametrize("document", FOR_USERS)
def test_every_test_a_document_names_exists(document):
    """A document that says a behaviour is proven names the test: the test is there, by that name."""
    defined = {
        name
        for path in (REPO / "tests").rglob("test_*.py")
        for name in re.findall(r"^def (test_\w+)", path.read_text(), flags=re.M)
    }
    named = set(re.findall(r"`(test_\w+)`", (REPO / document).read_text()))
    assert named <= defined, sorted(named - defined)
