"""infra/config/names.py: the physical names, and no other module of the program spelling one."""

from __future__ import annotations

import re

import pytest

from infra.config.names import (
    content_name,
    log_group_name,
    regional_name,
    repository_name,
    resource_name,
    stack_prefix,
    swarm_object_name,
)
from tests.support.pulumi_program import REPO

pytestmark = pytest.mark.unit

# A name built by hand: restdemo-{...} or /restdemo/{...} in an f-string.
SPELLED = re.compile(r"""f["'][^"']*(?:\brestdemo-\{|/restdemo/\{)""")


def test_the_names_of_a_stack():
    assert stack_prefix("prod") == "restdemo-prod"
    assert resource_name("prod", "state") == "restdemo-prod-state"
    assert regional_name("prod", "eu-west-1", "worker") == "restdemo-prod-eu-west-1-worker"
    assert repository_name("restdemo-agent", "prod") == "restdemo-agent-prod"
    assert (log_group_name("prod"), log_group_name("prod", "sessions/workers")) == (
        "/restdemo/prod",
        "/restdemo/prod/sessions/workers",
    )


def test_the_names_of_an_app_in_the_swarm():
    """As `docker stack deploy` names them (`<stack>_<name>`); a secret's or config's name ends with
    12 hex digits of its content's SHA-256 (printf 'hunter2' | sha256sum)."""
    assert swarm_object_name("shop", "web") == "shop_web"
    assert content_name("shop", "db_password", b"hunter2") == "shop_db_password_f52fbd32b2b3"


def test_no_other_module_of_the_program_spells_a_physical_name():
    spelled = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "infra").rglob("*.py"))
        if path.relative_to(REPO).as_posix() != "infra/config/names.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SPELLED.search(line)
    ]
    assert spelled == []


def test_the_check_finds_a_name_spelled_by_hand():
    assert SPELLED.search('        name=f"restdemo-{stack}-alarms",')
    assert SPELLED.search('    return f"/restdemo/{stack}"')
    assert not SPELLED.search("        name=resource_name(stack, 'alarms'),")
