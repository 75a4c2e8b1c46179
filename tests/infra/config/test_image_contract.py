"""infra/config/image_contract.py: what the settings read from a Dockerfile."""

from __future__ import annotations

import pytest

from infra.config.image_contract import (
    DockerfileError,
    HealthCheck,
    exposed_ports,
    image_healthcheck,
    needed_stages,
    parse_healthcheck,
    stages,
    target_stage,
    unset_args,
)
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
    assert [(s.name, s.base, s.healthcheck) for s in stages(DOCKERFILE)] == [
        ("build", "${BASE}", 'CMD ["false"]'),
        ("serve", "build", '--timeout=2s --interval=1m30s CMD ["python3", "/check.py"]'),
        (None, "scratch", None),
    ]
    assert stages(DOCKERFILE)[0].body == ("make && make install", 'CMD ["false"]')


def test_the_target_is_found_by_name_in_any_case_and_empty_means_the_last():
    assert target_stage(DOCKERFILE, "SERVE").name == "serve"
    assert target_stage(DOCKERFILE, "").base == "scratch"
    assert target_stage(DOCKERFILE, "test") is None


def test_a_stage_keeps_its_own_health_check_else_its_bases():
    assert image_healthcheck(DOCKERFILE, "serve") == HealthCheck(["CMD", "python3", "/check.py"], 90.0, 2.0)
    assert image_healthcheck("FROM x AS a\nHEALTHCHECK CMD true\nFROM a AS b\n", "b").test == ["CMD-SHELL", "true"]
    assert image_healthcheck(DOCKERFILE, "") is None  # FROM scratch: nothing inherited
    assert image_healthcheck("FROM a AS a\n", "a") is None  # a stage named like its external base
    assert image_healthcheck("FROM x AS a\nHEALTHCHECK CMD true\nFROM a AS b\nHEALTHCHECK NONE\n", "b") is None


@pytest.mark.parametrize(
    ("arguments", "check"),
    [
        ('CMD ["/check", "--interval=5"]', HealthCheck(["CMD", "/check", "--interval=5"])),
        (
            "--interval=2s --timeout=1s --start-period=5s --retries=2 CMD curl -f localhost/ready || exit 1",
            HealthCheck(["CMD-SHELL", "curl -f localhost/ready || exit 1"], 2.0, 1.0, 5.0, 2),
        ),
        ("--start-interval=1s CMD [not json", HealthCheck(["CMD-SHELL", "[not json"])),
        ("none", None),
    ],
)
def test_a_healthcheck_is_read_as_the_engine_runs_it(arguments, check):
    """Options only before CMD (a check's own --interval argument is not one); the exec form as
    JSON, anything else through the shell."""
    assert parse_healthcheck(arguments) == check


@pytest.mark.parametrize("arguments", ["--every=5s CMD true", "--interval=soon CMD true", "--retries=2", "CMD"])
def test_a_healthcheck_the_engine_would_refuse_is_an_error(arguments):
    with pytest.raises(DockerfileError):
        parse_healthcheck(arguments)


def test_heredoc_bodies_escape_directives_and_blank_continuation_lines_are_not_instructions():
    text = (
        "# escape=`\n"
        "FROM python AS serve\n"
        "COPY <<EOF /srv/server.py\n"
        "from http.server import HTTPServer\n"
        "HEALTHCHECK NONE\n"
        "EOF\n"
        "RUN <<-'SCRIPT' bash\n"
        "\tfrom x\n"
        "\tSCRIPT\n"
        "WORKDIR C:\\app\\\n"
        "HEALTHCHECK --interval=3s `\n"
        "\n"
        '    CMD ["python3", "/srv/check.py"]\n'
    )
    assert [(s.name, s.base, s.healthcheck) for s in stages(text)] == [
        ("serve", "python", '--interval=3s CMD ["python3", "/srv/check.py"]')
    ]
    assert stages(text)[0].body == (
        "<<EOF /srv/server.py",
        "<<-'SCRIPT' bash",
        "C:\\app\\",
        '--interval=3s CMD ["python3", "/srv/check.py"]',
    )
    assert image_healthcheck(text, "").interval == 3.0


def test_restdemos_own_dockerfile_has_the_check_the_defaults_restate():
    text = (REPO / "app" / "Dockerfile").read_text()
    assert [s.name for s in stages(text)] == ["build", "collect", "runtime"]
    assert image_healthcheck(text, "runtime") == HealthCheck(
        ["CMD", "restdemo-cli", "show", "health", "--timeout", "4"], 5.0, 5.0, 10.0, 3
    )


# A Dockerfile as third-party apps write them: a global ARG for the base, build and test stages, the
# runtime reading the build's output.
MULTI_STAGE = """\
ARG GO_VERSION
ARG ALPINE=alpine:3.20
FROM golang:${GO_VERSION} AS builder
ARG TARGETOS TARGETARCH
ARG REVISION
RUN go build -ldflags "-X main.rev=$REVISION" -o /podinfo
FROM builder AS test
ARG TEST_FLAGS
RUN go test $TEST_FLAGS
FROM ${ALPINE} AS base
EXPOSE 9797/udp 9898
FROM base
ARG ALPINE
ARG BUILDKIT_SBOM_SCAN_STAGE
COPY --from=builder /podinfo /podinfo
RUN --mount=type=cache,target=/root,from=cache true
EXPOSE 9999/tcp
"""


def test_a_stage_records_its_ports_arguments_and_the_stages_it_reads():
    last = stages(MULTI_STAGE)[-1]
    assert (last.exposed, last.args, last.reads) == (
        ("9999/tcp",),
        (("ALPINE", False), ("BUILDKIT_SBOM_SCAN_STAGE", False)),
        ("builder", "cache"),
    )
    assert stages(MULTI_STAGE)[0].args == (("TARGETOS", False), ("TARGETARCH", False), ("REVISION", False))


def test_a_build_runs_only_the_stages_its_target_needs():
    assert [s.name for s in needed_stages(MULTI_STAGE, "")] == ["builder", "base", None]
    assert [s.name for s in needed_stages(MULTI_STAGE, "test")] == ["builder", "test"]
    assert [s.name for s in needed_stages(MULTI_STAGE, "base")] == ["base"]


def test_the_exposed_tcp_ports_are_the_stages_and_its_bases():
    assert exposed_ports(MULTI_STAGE, "") == {9898, 9999}
    assert exposed_ports(MULTI_STAGE, "builder") == set()
    assert exposed_ports("FROM x\nARG PORT=1\nEXPOSE $PORT\n", "") is None
    assert exposed_ports("FROM x\nEXPOSE 8000-8010\n", "") is None
    assert exposed_ports((REPO / "app" / "Dockerfile").read_text(), "runtime") == {8000}


def test_arguments_without_a_default_that_nothing_sets_are_found_in_the_stages_built():
    # GO_VERSION reaches a FROM with no default; REVISION is declared bare; the platform ARGs, the
    # global ALPINE's default and BUILDKIT_* are set by BuildKit or the global scope.
    assert unset_args(MULTI_STAGE, "", set()) == ["GO_VERSION", "REVISION"]
    assert unset_args(MULTI_STAGE, "", {"GO_VERSION", "REVISION"}) == []
    assert unset_args(MULTI_STAGE, "test", {"GO_VERSION", "REVISION"}) == ["TEST_FLAGS"]
    assert unset_args(MULTI_STAGE, "base", set()) == []  # builder is not built
    assert unset_args((REPO / "app" / "Dockerfile").read_text(), "runtime", set()) == []


@pytest.mark.parametrize(
    ("dockerfile", "unset"),
    [
        ('FROM x\nARG GREETING="hello world"\nRUN echo "$GREETING"\n', []),  # quoted: one word, a default
        ("FROM x\nARG EXTRA\nRUN pip install ${EXTRA:+--extra-index-url $EXTRA} app\n", ["EXTRA"]),
        ("FROM x\nARG EXTRA\nRUN pip install ${EXTRA:+--extra-index-url} app\n", []),  # optional by choice
        ("FROM x\nARG MODE\nRUN test ${MODE-dev}\n", []),
        ("FROM x\nARG TOKEN\nRUN ./build.sh\n", ["TOKEN"]),  # a script may read it: not known optional
        ("FROM x\nARG NAME\nRUN test ${NAME:?set NAME}\n", ["NAME"]),
        ("ARG PY\nFROM python:${PY:-3.12}\n", []),
        ("ARG PY\nFROM python:$PY\n", ["PY"]),
        ("ARG PY\nFROM python:3.12\nARG PYTHON\nRUN echo $PYTHON\n", ["PYTHON"]),  # $PY is not $PYTHON
    ],
)
def test_an_argument_is_unset_only_where_the_dockerfile_needs_it(dockerfile, unset):
    assert unset_args(dockerfile, "", set()) == unset
