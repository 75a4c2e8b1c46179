"""The program's runs under mocks, shared by the test modules of tests/infra.

`run` is the program run for one stack file, once per stack for the whole session (a run
takes about a second). A module sets `STACKS_UNDER_TEST` to the stacks its tests cover
(default: all four); a test that changes settings calls `run_program` itself.
"""

from __future__ import annotations

import functools

import pytest

from tests.support.pulumi_program import STACKS, run_program

stack_run = functools.cache(run_program)


def pytest_generate_tests(metafunc):
    if "run" in metafunc.fixturenames:
        stacks = getattr(metafunc.module, "STACKS_UNDER_TEST", STACKS)
        metafunc.parametrize("run", stacks, indirect=True, scope="session")


@pytest.fixture(scope="session")
def run(request):
    return stack_run(request.param)


@pytest.fixture(scope="session")
def local():
    return stack_run("local")
