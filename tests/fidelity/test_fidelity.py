"""Every stack's resources against the rules AWS and the providers apply (cited data in
tests/fidelity/data/, checked by tests/fidelity/rules.py), and each rule against a bad variant, so
a rule that cannot fail is caught too."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from tests.fidelity.data import FIELDS, FORCE_NEW, NEEDS, READ_BACK_WIDER, TWO_PLACES, WRITTEN_ON_THE_SWARM
from tests.fidelity.data.docker_build import DOCKER_BUILD_IMAGE
from tests.fidelity.data.ec2 import BOOTS, IMAGE_ARCHITECTURES, INSTANCE_ARCHITECTURES
from tests.fidelity.rules import (
    Field,
    architecture_problems,
    closure,
    docker_build_changes,
    field_problems,
    managed_twice,
    missing_needs,
    replaced_delete_first,
    replaced_every_time,
    values_at,
    with_value,
    written_twice,
)
from tests.support import pulumi_program
from tests.support.pulumi_program import STACKS, Registered, run_program, stack_config
from tests.support.stack_variants import (
    ALL,
    COMPOSE_APP,
    COMPOSE_AWS_SECRETS_VARIANT,
    STACK_VARIANTS,
    compose_app_run,
    variant_run,
)

pytestmark = pytest.mark.fidelity

# What a team changes on an ordinary day; none of it may replace a named resource.
ROUTINE_CHANGES = {
    "drainTimeout": {"restdemo:drainTimeout": "25m"},
    "nodeAmi": {"restdemo:nodeAmi": "al2023-ami-2023.9.20260120.0-kernel-6.1-x86_64"},
    "instanceTypes": {
        "restdemo:managerInstanceType": "t3.large",
        "restdemo:workerInstanceType": "m6i.large",
        "restdemo:workerInstanceTypes": ["m6a.large", "m5.large"],
    },
    "workerCount": {"restdemo:workerCount": "4"},
    "version": {"restdemo:version": "v2"},
    "replicas": {"restdemo:replicas": "4"},
    "rollout": {"restdemo:updateDelay": "1m", "restdemo:updateMonitor": "2m", "restdemo:stopGracePeriod": "1m"},
    "logRetentionDays": {"restdemo:logRetentionDays": "90"},
    "pruneInterval": {"restdemo:pruneInterval": "12h"},
    # Your own service's contract, changed on a deployed stack: rolls the service, replaces nothing.
    # Another image (the second app's, which EXPOSEs 9090) under the same service name.
    "serviceContract": {
        "restdemo:buildContext": "tests/e2e/second_app",
        "restdemo:buildTarget": "serve",
        "restdemo:containerPort": "9090",
        "restdemo:healthCheckPath": "/ready",
        "restdemo:healthCheck": "[]",
        "restdemo:serviceEnvironment": '["LOG_LEVEL=debug"]',
        "restdemo:buildArgs": '["LOG_FORMAT=json"]',
    },
}
# Settings the local stack does not read (the program refuses none, but changes nothing for them).
AWS_ONLY = {"drainTimeout", "nodeAmi", "instanceTypes", "workerCount", "logRetentionDays", "pruneInterval"}


# prod as the deploy job runs it: with the config it adds (.github/workflows/deploy.yml).
DEPLOY_JOB = "prod (deploy job)"
# Every optional feature, alone and all together, on every AWS stack (no stack file sets one).
VARIANT_RUNS = [f"{stack} ({variant})" for stack, variant in STACK_VARIANTS]
EVERY_RUN = [*STACKS, DEPLOY_JOB, *VARIANT_RUNS, COMPOSE_APP]


@pytest.fixture(scope="module")
def runs():
    found = {stack: run_program(stack) for stack in STACKS}
    found[DEPLOY_JOB] = run_program("prod", {**stack_config("prod"), "restdemo:buildCache": "read-write"})
    for (stack, variant), name in zip(STACK_VARIANTS, VARIANT_RUNS, strict=True):
        found[name] = variant_run(stack, variant)
    found[COMPOSE_APP] = compose_app_run()
    return found


def sample(runs, typ: str, path: str | None = None) -> Registered:
    """The first resource of `typ` in any run (the deploy job's writes the build cache; prod with every
    feature has the most kinds), with a value at `path` when one is given (a host route's rule, not a
    path route's)."""
    for stack in (DEPLOY_JOB, f"prod ({ALL})", *runs):
        found = [r for r in runs[stack].of_type(typ) if path is None or values_at(r.inputs, path)]
        if found:
            return found[0]
    raise AssertionError(f"no stack registers a {typ}")


@pytest.mark.parametrize("stack", EVERY_RUN)
def test_every_value_is_one_aws_and_the_providers_accept(runs, stack):
    problems = [p for rule in FIELDS for p in field_problems(rule, runs[stack].registered)]
    assert problems == []


@pytest.mark.parametrize("rule", FIELDS, ids=lambda rule: rule.name)
def test_each_field_rule_applies_and_catches_its_bad_variant(runs, rule: Field):
    applies = [v for run in runs.values() for r in run.of_type(rule.type) for v in values_at(r.inputs, rule.path)]
    assert applies, f"{rule.name} checks nothing in any stack"
    resource = sample(runs, rule.type, rule.path)
    bad = dataclasses.replace(resource, inputs=with_value(resource.inputs, rule.path, rule.bad))
    assert field_problems(rule, [bad]), f"{rule.name} accepted {rule.bad!r}"


@pytest.mark.parametrize(
    "stack,change",
    [(s, c) for s in STACKS for c in sorted(ROUTINE_CHANGES) if s != "local" or c not in AWS_ONLY],
)
def test_a_routine_change_replaces_no_named_resource(runs, stack, change):
    after = run_program(stack, {**stack_config(stack), **ROUTINE_CHANGES[change]})
    assert [p for rule in FORCE_NEW for p in replaced_delete_first(rule, runs[stack], after)] == []
    # Whole minutes and hours (the `rollout` change) must still be sent in the read-back form.
    assert [p for rule in FIELDS for p in field_problems(rule, after.registered)] == []


@pytest.mark.parametrize("rule", FORCE_NEW, ids=lambda rule: rule.type.split(":")[-1])
def test_each_force_new_rule_catches_a_changed_field(runs, rule):
    before = next(run for run in runs.values() if run.of_type(rule.type))
    after = copy.deepcopy(before)
    resource = after.of_type(rule.type)[0]
    field = rule.fields[-1].removesuffix("{keys}")
    resource.inputs[field] = {"changed": True} if isinstance(resource.inputs.get(field), dict) else ["changed"]
    assert replaced_delete_first(rule, before, after)


@pytest.mark.parametrize("stack", EVERY_RUN)
def test_no_input_is_managed_from_two_places(runs, stack):
    assert [p for rule in TWO_PLACES for p in managed_twice(rule, runs[stack])] == []


@pytest.mark.parametrize("rule", TWO_PLACES, ids=lambda rule: f"{rule.type.split(':')[-1]}.{rule.field}")
def test_each_two_places_rule_catches_an_unignored_field(runs, rule):
    run = copy.deepcopy(runs["prod"])
    owner = run.of_type(rule.type)[0]
    owner.inputs[rule.field] = owner.inputs.get(rule.field) or ["managed-here-too"]
    owner.ignore_changes = []
    key = owner.inputs.get(rule.owner_key) if rule.owner_key != "id" else f"{owner.name}-id"
    if not [m for m in run.of_type(rule.manager) if m.inputs.get(rule.link) == key]:
        run.registered.append(Registered(rule.manager, "also-managing", {rule.link: key}, [], True, urn="urn:extra"))
    assert managed_twice(rule, run)


@pytest.mark.parametrize("stack", EVERY_RUN)
def test_no_input_read_back_wider_replaces_a_resource_on_every_up(runs, stack):
    assert [p for rule in READ_BACK_WIDER for p in replaced_every_time(rule, runs[stack])] == []


@pytest.mark.parametrize("rule", READ_BACK_WIDER, ids=lambda rule: f"{rule.type.split(':')[-1]}.{rule.field}")
def test_each_read_back_rule_catches_a_compared_field(runs, rule):
    run = copy.deepcopy(runs["prod"])
    (resource,) = run.of_type(rule.type)
    resource.ignore_changes = []
    assert replaced_every_time(rule, run)


@pytest.mark.parametrize("stack", EVERY_RUN)
def test_nothing_the_swarm_writes_is_written_by_the_program_too(runs, stack):
    assert [p for rule in WRITTEN_ON_THE_SWARM for p in written_twice(rule, runs[stack])] == []


@pytest.mark.parametrize("rule", WRITTEN_ON_THE_SWARM, ids=lambda rule: f"{rule.type.split(':')[-1]}.{rule.field}")
def test_each_written_on_the_swarm_rule_catches_the_program_writing_it(runs, rule):
    run = copy.deepcopy(runs[f"prod ({COMPOSE_AWS_SECRETS_VARIANT})"])
    labelled = next(r for r in run.of_type(rule.type) if r.name == "restdemo-web")
    assert rule.label in str(labelled.inputs.get("labels"))
    assert written_twice(rule, run) == []
    labelled.ignore_changes = []
    assert written_twice(rule, run) == [
        f"restdemo-web: {rule.field} is compared on every plan: ignore_changes it [{rule.source}]"
    ]
    labelled.ignore_changes = [rule.field]
    labelled.inputs["taskSpec"]["containerSpec"]["secrets"] = [{"secretId": "x", "secretName": "y"}]
    assert len(written_twice(rule, run)) == 1


@pytest.mark.parametrize("stack", EVERY_RUN)
def test_each_group_launches_only_types_that_boot_its_image(runs, stack):
    assert architecture_problems(runs[stack], IMAGE_ARCHITECTURES, INSTANCE_ARCHITECTURES, BOOTS) == []


def test_the_architecture_check_catches_an_image_or_a_type_of_the_other_architecture(runs):
    run = copy.deepcopy(runs[f"prod ({ALL})"])  # x86 managers, Graviton workers
    templates = {t.name: t.inputs for t in run.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    templates["swarm-managers-template"]["imageId"], templates["swarm-workers-template"]["imageId"] = (
        templates["swarm-workers-template"]["imageId"],
        templates["swarm-managers-template"]["imageId"],
    )
    assert architecture_problems(run, IMAGE_ARCHITECTURES, INSTANCE_ARCHITECTURES, BOOTS) == [
        f"swarm-workers-group: {kind} runs {arch}, its image {image} is x86_64 [{BOOTS}]"
        for kind, arch, image in [
            ("t4g.medium", "arm64", pulumi_program.AMI_ID),
            ("m7g.medium", "arm64", pulumi_program.AMI_ID),
        ]
    ] + [f"swarm-managers-group: t3.small runs x86_64, its image {pulumi_program.ARM_AMI_ID} is arm64 [{BOOTS}]"]


@pytest.mark.parametrize("stack", EVERY_RUN)
def test_everything_waits_for_what_aws_needs_first(runs, stack):
    assert [p for rule in NEEDS for p in missing_needs(rule, runs[stack])] == []


@pytest.mark.parametrize("rule", NEEDS, ids=lambda rule: f"{rule.type.split(':')[-1]}: {rule.what}")
def test_each_needs_rule_catches_a_missing_dependency(runs, rule):
    # prod's, or the first run that has what the rule is about (the database: a Compose stack's).
    applies = [r for r in [runs["prod"], *runs.values()] if any(rule.required(x, r) for x in r.of_type(rule.type))]
    run = copy.deepcopy(applies[0])
    resource = next(r for r in run.of_type(rule.type) if rule.required(r, run))
    required = {r.urn for r in rule.required(resource, run)}
    assert required <= closure(resource, run)
    for other in run.registered:  # nothing in the program waits for them any more
        other.dependencies = [urn for urn in other.dependencies if urn not in required]
    assert missing_needs(rule, run)


def test_a_fresh_ecr_token_alone_rebuilds_nothing_and_shows_no_diff(runs, monkeypatch):
    """Every `up` asks ECR for a new token; docker-build's diff ignores registry passwords."""
    monkeypatch.setattr(pulumi_program, "ECR_TOKEN_GENERATION", 2)
    after = run_program("dev")
    old = runs["dev"].named(DOCKER_BUILD_IMAGE, "restdemo").inputs
    new = after.named(DOCKER_BUILD_IMAGE, "restdemo").inputs
    assert old["registries"][0]["password"] != new["registries"][0]["password"]
    assert {k: v for k, v in old.items() if k != "registries"} == {k: v for k, v in new.items() if k != "registries"}
    assert docker_build_changes(old, new) == []
    # The rule catches what does rebuild: another registry user, another build argument.
    other_user = {**new, "registries": [{**new["registries"][0], "username": "someone"}]}
    assert docker_build_changes(old, other_user) == ["registries[0]"]
    assert docker_build_changes(old, {**new, "buildArgs": {**new["buildArgs"], "VERSION": "v2"}}) == ["buildArgs"]


def test_a_renewed_ca_bundle_rebuilds_nothing_but_a_new_one_does(tmp_path):
    bundles = []
    for text in ("first", "renewed"):
        bundle = tmp_path / f"{text}.pem"
        bundle.write_text(f"-----BEGIN CERTIFICATE-----\n{text}\n-----END CERTIFICATE-----\n")
        bundles.append(bundle)
    with_bundle = [
        run_program("local", {**stack_config("local"), "restdemo:buildCaBundle": str(b)}).one(DOCKER_BUILD_IMAGE)
        for b in bundles
    ]
    assert with_bundle[0].inputs["secrets"] != with_bundle[1].inputs["secrets"]
    assert docker_build_changes(with_bundle[0].inputs, with_bundle[1].inputs) == []
    without = run_program("local").one(DOCKER_BUILD_IMAGE).inputs
    assert docker_build_changes(without, with_bundle[0].inputs) == ["secrets"]
