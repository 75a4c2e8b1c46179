"""infra/config/reference.py: Pulumi.yaml's config block and docs/settings.md come from the settings."""

from __future__ import annotations

import pytest
import yaml

from infra.config import reference
from tests.support.pulumi_program import REPO

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("path", ["Pulumi.yaml", "docs/settings.md"])
def test_the_generated_file_is_what_make_docs_writes(path):
    """Edit a setting in infra/config/settings.py, then run `make docs`."""
    assert (REPO / path).read_text() == reference.expected()[REPO / path]


def test_a_changed_description_makes_the_check_fail(monkeypatch, capsys):
    field = reference.Settings.model_fields["replicas"]
    monkeypatch.setattr(field, "description", "Replicas of the service.")
    assert reference.main(["--check"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "Pulumi.yaml differs from infra/config/settings.py: run make docs",
        "docs/settings.md differs from infra/config/settings.py: run make docs",
    ]


def test_the_check_passes_on_what_is_committed(capsys):
    assert reference.main(["--check"]) == 0
    assert capsys.readouterr().err == ""


def test_the_config_block_keeps_the_rest_of_pulumi_yaml():
    text = reference.pulumi_yaml("name: restdemo\nmain: infra/\nconfig:\n  stale:\n    type: string\n")
    assert text.startswith("name: restdemo\nmain: infra/\n" + reference.GENERATED + "config:\n")
    assert "stale" not in yaml.safe_load(text)["config"]
    assert reference.pulumi_yaml(text) == text  # writing twice changes nothing


def test_types_defaults_and_where_each_setting_applies():
    block = reference.config_block()
    assert block["replicas"] == {
        "type": "integer",
        "description": "Replicas of the service (1-100).",
        "default": 3,
    }
    assert block["drainTimeout"]["default"] == "10m"  # a duration in Go's spelling, as stack files write it
    assert block["vpcCidr"]["default"] == "10.0.0.0/16"
    assert block["adminCidrs"] | {"description": ""} == {
        "type": "array",
        "items": {"type": "string"},
        "description": "",
        "default": [],
    }
    assert block["nodeAmi"]["default"] == ""  # optional: empty means unset
    assert block["deletionProtection"]["type"] == "boolean"
    assert block["managerCount"]["description"].endswith(" (AWS stacks)")
    assert block["dockerHost"]["description"].endswith(" (local stack)")
    assert "awsRegion" not in block
    assert "| `nodeAmi` | string | (unset) |" in reference.settings_markdown()
