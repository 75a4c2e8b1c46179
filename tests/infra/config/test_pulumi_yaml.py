"""Pulumi.yaml declares every setting the program reads, with the program's own defaults."""

from __future__ import annotations

import json

import pytest
import yaml
from pydantic.alias_generators import to_camel

from infra.config.settings import Settings, parse_settings
from tests.support.pulumi_program import REPO, STACKS, stack_config

pytestmark = pytest.mark.unit

PROJECT = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
DECLARED = PROJECT["config"]
TYPES = {int: "integer", str: "string", bool: "boolean", list: "array", float: "string"}


def test_project_layout():
    assert PROJECT["name"] == "restdemo"
    assert PROJECT["main"] == "infra/"
    assert PROJECT["stackConfigDir"] == "stacks"
    assert PROJECT["runtime"] == {"name": "python", "options": {"toolchain": "uv"}}


def test_every_setting_is_declared_and_nothing_else():
    fields = {to_camel(name) for name in Settings.model_fields if name != "aws_region"}
    assert set(DECLARED) == fields


@pytest.mark.parametrize("key", sorted(DECLARED))
def test_declaration_has_type_description_and_the_programs_default(key):
    """Every key has a default: the Pulumi CLI refuses to run a stack that does not set a declared
    key without one, whether the program reads it or not (pulumi/pulumi#21797). An optional
    setting's default is empty, which the program reads as unset."""
    declaration = DECLARED[key]
    assert declaration["description"]
    assert declaration["type"] in {"string", "integer", "boolean", "array"}
    assert "default" in declaration
    field = next(name for name in Settings.model_fields if to_camel(name) == key)
    declared = declaration["default"]
    wire = json.dumps(declared) if isinstance(declared, list) else str(declared)
    assert getattr(parse_settings({f"restdemo:{key}": wire}), field) == getattr(Settings(), field)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_hold_only_values_of_declared_keys(stack):
    for key, value in stack_config(stack).items():
        namespace, _, name = key.partition(":")
        assert namespace in {"restdemo", "aws"}, key
        if namespace == "restdemo":
            assert name in DECLARED, key
            assert not isinstance(value, dict), f"{key}: stack files hold values, not logic"
