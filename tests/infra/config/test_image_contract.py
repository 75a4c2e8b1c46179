"""infra/config/image_contract.py: what the settings read from a Dockerfile."""

from __future__ import annotations

import pytest

from infra.config.image_contract import Stage, healthcheck_interval, image_healthcheck, stages, target_stage
from tests.support.pulumi_program import REPO

pytestmark = pytest.mark.unit

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG BASE=python:3.11-slim
FROM --platform=$BUILDPLATFORM ${BASE} AS Build
RUN make \\
    # a comment inside a continued line
    && make install
HEALTHCHECK CMD ["false"]
FROM build as serve
HEALTHCHECK --timeout=2s \\
    --interval=1m30s CMD ["python3", "/check.py"]
FROM scratch
"""


def test_stages_are_read_with_their_names_bases_and_health_checks():
    assert stages(DOCKERFILE) == [
        Stage("build", "${BASE}", 'CMD ["false"]'),
        Stage("serve", "build", '--timeout=2s --interval=1m30s CMD ["python3", "/check.py"]'),
        Stage(None, "scratch"),
    ]


def test_the_target_is_found_by_name_in_any_case_and_empty_means_the_last():
    assert target_stage(DOCKERFILE, "SERVE").name == "serve"
    assert target_stage(DOCKERFILE, "").base == "scratch"
    assert target_stage(DOCKERFILE, "test") is None


def test_a_stage_keeps_its_own_health_check_else_its_bases():
    assert image_healthcheck(DOCKERFILE, "serve").endswith('CMD ["python3", "/check.py"]')
    assert image_healthcheck("FROM x AS a\nHEALTHCHECK CMD true\nFROM a AS b\n", "b") == "CMD true"
    assert image_healthcheck(DOCKERFILE, "") is None  # FROM scratch: nothing inherited
    assert image_healthcheck("FROM a AS a\n", "a") is None  # a stage named like its external base


def test_the_interval_is_read_or_dockers_default():
    assert healthcheck_interval("--timeout=2s --interval=1m30s CMD true") == 90.0
    assert healthcheck_interval("CMD true") == 30.0


def test_restdemos_own_dockerfile_has_the_check_the_defaults_restate():
    text = (REPO / "app" / "Dockerfile").read_text()
    assert [s.name for s in stages(text)] == ["build", "collect", "runtime"]
    assert healthcheck_interval(image_healthcheck(text, "runtime")) == 5.0
