"""Settings: every invalid value stops the program with a message naming key, value and what is allowed."""

from __future__ import annotations

import pytest

from infra.config.settings import Settings, SettingsError, parse_settings

pytestmark = pytest.mark.unit

AWS_OK = {
    "aws:region": "eu-west-1",
    "restdemo:platform": "aws",
    "restdemo:owner": "team",
    "restdemo:publicSubnetCidrs": '["10.0.0.0/24", "10.0.1.0/24"]',
    "restdemo:adminCidrs": '["203.0.113.0/24"]',
    "restdemo:nodeAmi": "al2023-ami-2023.9.20251208.0-kernel-6.1-x86_64",
}


def error_of(config: dict) -> str:
    with pytest.raises(SettingsError) as caught:
        parse_settings(config)
    return str(caught.value)


def test_defaults_are_the_local_stack():
    settings = parse_settings({})
    assert (settings.platform, settings.replicas, settings.published_port) == ("local", 3, 8000)
    assert (settings.update_delay, settings.stop_grace_period) == (15.0, 15.0)


def test_values_arrive_as_strings_and_json_and_are_typed():
    settings = parse_settings(
        {**AWS_OK, "restdemo:replicas": "4", "restdemo:updateDelay": "1m30s", "restdemo:managerCount": "3"}
    )
    assert settings.replicas == 4 and settings.update_delay == 90.0 and settings.manager_count == 3
    assert [str(c) for c in settings.public_subnet_cidrs] == ["10.0.0.0/24", "10.0.1.0/24"]


@pytest.mark.parametrize(
    "config,message",
    [
        ({"restdemo:replicas": "0"}, 'restdemo:replicas = "0": must be at least 1'),
        (
            {"restdemo:publishedPort": "70000"},
            'restdemo:publishedPort = "70000": must be at most 65535',
        ),
        ({"restdemo:publishedPort": "0"}, 'restdemo:publishedPort = "0": must be at least 1'),
        (
            {"restdemo:updateDelay": "15"},
            "restdemo:updateDelay = \"15\": '15' is not a duration; write it like 500ms, 15s, 1m30s or 2h",
        ),
        ({"restdemo:updateDelay": "soon"}, "restdemo:updateDelay = \"soon\": 'soon' is not a duration"),
        (
            {"restdemo:stopGracePeriod": "5s"},
            "restdemo:stopGracePeriod = 5s: must be above 10s, the time the app may take to drain",
        ),
        (
            {"restdemo:convergeTimeout": "20s"},
            "restdemo:convergeTimeout = 20s: a rollout of 3 replicas takes at least 90s",
        ),
        ({"restdemo:platform": "gcp"}, 'restdemo:platform = "gcp": must be local or aws'),
        (
            {"restdemo:replcas": "3"},
            "restdemo:replcas is not a setting of this project; did you mean restdemo:replicas?",
        ),
        ({"restdemo:awsRegion": "x"}, "restdemo:awsRegion is not a setting of this project; set aws:region instead"),
        ({**AWS_OK, "restdemo:managerCount": "2"}, 'restdemo:managerCount = "2": must be 1, 3 or 5'),
        ({**AWS_OK, "restdemo:managerCount": "4"}, 'restdemo:managerCount = "4": must be 1, 3 or 5'),
        (
            {**AWS_OK, "restdemo:workerCount": "-1"},
            'restdemo:workerCount = "-1": must be at least 0',
        ),
        (
            {**AWS_OK, "restdemo:vpcCidr": "10.0.0.0/33"},
            'restdemo:vpcCidr = "10.0.0.0/33": not an IPv4 CIDR block like 10.0.0.0/16',
        ),
        (
            {**AWS_OK, "restdemo:vpcCidr": "10.0.0.1/16"},
            'restdemo:vpcCidr = "10.0.0.1/16": not an IPv4 CIDR block like 10.0.0.0/16 (10.0.0.1/16 has host bits set)',
        ),
        (
            {**AWS_OK, "restdemo:adminCidrs": '["0.0.0.0/0", "banana"]'},
            'restdemo:adminCidrs[1] = "banana": not an IPv4 CIDR block',
        ),
        (
            {**AWS_OK, "restdemo:publicSubnetCidrs": '["10.0.0.0/24", "10.0.0.128/25"]'},
            "public subnet 10.0.0.0/24 overlaps public subnet 10.0.0.128/25; subnets must not overlap",
        ),
        (
            {**AWS_OK, "restdemo:privateSubnetCidrs": '["10.0.1.0/24", "10.0.2.0/24"]'},
            "public subnet 10.0.1.0/24 overlaps private subnet 10.0.1.0/24",
        ),
        (
            {**AWS_OK, "restdemo:publicSubnetCidrs": '["10.1.0.0/24", "10.0.1.0/24"]'},
            "public subnet 10.1.0.0/24 is not inside restdemo:vpcCidr = 10.0.0.0/16",
        ),
        (
            {**AWS_OK, "restdemo:drainTimeout": "30s"},
            'restdemo:drainTimeout = "30s": must be from 60s to 7200s (1m to 2h)',
        ),
        (
            {**AWS_OK, "restdemo:drainTimeout": "3h"},
            'restdemo:drainTimeout = "3h": must be from 60s to 7200s (1m to 2h)',
        ),
        (
            {**AWS_OK, "restdemo:nodeAmi": "ami-XYZ"},
            'restdemo:nodeAmi = "ami-XYZ": an AMI id is ami- and 8 or 17 hexadecimal digits',
        ),
        (
            {**AWS_OK, "restdemo:nodeAmi": "al2023|latest"},
            'restdemo:nodeAmi = "al2023|latest": an AMI name has 3-128 letters, digits, spaces or ()[]./\'@_-',
        ),
        (
            {**AWS_OK, "restdemo:logRetentionDays": "10"},
            'restdemo:logRetentionDays = "10": CloudWatch keeps logs for one of 1, 3, 5, 7, 14',
        ),
    ],
)
def test_invalid_value_names_key_value_and_what_is_allowed(config, message):
    assert message in error_of(config)


@pytest.mark.parametrize(
    "missing,message",
    [
        ("aws:region", "platform aws needs aws:region, the AWS region to deploy to"),
        ("restdemo:owner", "platform aws needs restdemo:owner"),
        ("restdemo:publicSubnetCidrs", "platform aws needs restdemo:publicSubnetCidrs"),
        ("restdemo:nodeAmi", "platform aws needs restdemo:nodeAmi, the nodes' AMI pinned per stack"),
    ],
)
def test_required_aws_setting_missing(missing, message):
    config = {k: v for k, v in AWS_OK.items() if k != missing}
    assert message in error_of(config)


def test_the_load_balancer_path_needs_admin_cidrs():
    config = {k: v for k, v in AWS_OK.items() if k != "restdemo:adminCidrs"}
    assert error_of(config | {"restdemo:adminAccess": "load-balancer"}).endswith(
        "restdemo:adminAccess = load-balancer needs restdemo:adminCidrs: the CIDR blocks allowed to reach the "
        "swarm's Docker API (or session-manager: through a port-forwarding session, no CIDR open)"
    )
    assert "adminCidrs" not in error_of(config | {"restdemo:adminAccess": "session-manager", "restdemo:replicas": "0"})


def test_admin_access_names_its_allowed_values():
    assert "restdemo:adminAccess" in error_of({**AWS_OK, "restdemo:adminAccess": "vpn"})
    assert "must be session-manager or load-balancer" in error_of({**AWS_OK, "restdemo:adminAccess": "vpn"})


def test_every_problem_is_reported_at_once():
    text = error_of({"restdemo:replicas": "0", "restdemo:publishedPort": "99999", "restdemo:bogus": "1"})
    assert text.count("\n") == 3
    assert "restdemo:replicas" in text and "restdemo:publishedPort" in text and "restdemo:bogus" in text


def test_an_unknown_key_names_the_closest_settings_not_all_of_them():
    assert error_of({"restdemo:nothingLikeIt": "1"}).splitlines()[1] == (
        "  restdemo:nothingLikeIt is not a setting of this project; the settings are in docs/settings.md"
    )
    assert error_of({"restdemo:replica": "1"}).splitlines()[1] == (
        "  restdemo:replica is not a setting of this project; did you mean restdemo:replicas? "
        "(the settings are in docs/settings.md)"
    )


def test_a_value_error_and_a_problem_between_settings_come_in_one_run():
    """Not in rounds: a field's error does not hide the checks across fields."""
    text = error_of({"restdemo:replicas": "0", "restdemo:stopGracePeriod": "5s", "restdemo:containerPort": "x"})
    assert text.splitlines() == [
        "invalid stack settings:",
        '  restdemo:replicas = "0": must be at least 1',
        '  restdemo:containerPort = "x": must be a whole number',
        "  restdemo:stopGracePeriod = 5s: must be above 10s, the time the app may take to drain on SIGTERM",
    ]


# A wrong value of each kind a setting has; none may be answered in pydantic's words.
WRONG_VALUES = ["", "x", "-5", "1.5", "99999999", '{"a": 1}', '["x"]', "[1, 2]", '{"A": [1]}', "a" * 300]


def test_no_setting_is_refused_in_a_librarys_wording():
    from infra.config.settings import Settings

    phrases = ("Input should", "should be", "should have", "Field required", "Value error", "type=", "pydantic")
    for field in Settings.model_fields.values():
        for value in WRONG_VALUES:
            try:
                parse_settings({f"restdemo:{field.alias}": value})
            except SettingsError as exc:
                text = str(exc)
                assert not any(p in text for p in phrases), (field.alias, value, text)


def test_rollout_lower_bound_is_batches_times_time_to_healthy_plus_delays():
    assert Settings(replicas=3, update_delay="15s").rollout_lower_bound() == 3 * 5 + 2 * 15
    assert Settings(replicas=6, update_parallelism=2, update_delay="10s").rollout_lower_bound() == 3 * 5 + 2 * 10


def test_swarm_update_time_adds_the_last_delay_and_the_monitor_window():
    # Measured on a real swarm (docs/benchmarks.md): 3 replicas, delay 15 s, monitor 30 s -> about 93 s.
    assert Settings(replicas=3, update_delay="15s", update_monitor="30s").swarm_update_seconds() == 45 + 15 + 30


def test_the_stop_grace_check_counts_on_the_apps_own_drain():
    from infra.config.settings import APP_DRAIN_SECONDS
    from restdemo.server import DRAIN_SECONDS

    assert APP_DRAIN_SECONDS == DRAIN_SECONDS


def test_a_misspelt_namespace_is_refused_with_the_one_meant():
    """`restdmo:replicas` was ignored and the default used: now refused, naming the one meant."""
    assert error_of({"restdmo:replicas": "5"}).splitlines()[1] == (
        "  restdmo:replicas: restdmo is not a namespace this program reads; did you mean restdemo:replicas? "
        "settings are restdemo:<setting>, besides the providers' (aws, docker, docker-build, pulumi, random, tls)"
    )
    assert parse_settings({"aws:region": "eu-west-1", "pulumi:disable-default-providers": "[]"}).platform == "local"


def test_instance_types_are_the_ones_ec2_has():
    """`t3.smal` matched the old pattern; EC2 would refuse the launch template's instances."""
    assert 'restdemo:managerInstanceType = "t3.smal": is not an EC2 instance type; did you mean t3.small?' in (
        error_of({**AWS_OK, "restdemo:managerInstanceType": "t3.smal"})
    )
    graviton = {
        **AWS_OK,
        "restdemo:nodeAmi": "al2023-ami-2023.9.20251208.0-kernel-6.1-arm64",
        "restdemo:managerInstanceType": "t4g.small",
        "restdemo:workerInstanceType": "m7g.large",
    }
    assert parse_settings(graviton).worker_instance_type == "m7g.large"


def test_aws_settings_on_the_local_stack_are_refused_unless_left_at_their_default():
    message = error_of({"restdemo:managerCount": "1", "restdemo:workerCount": "4", "restdemo:alarmEmail": "a@b.io"})
    assert message.splitlines()[1:] == [
        "  restdemo:workerCount applies to AWS stacks only (platform aws): the local stack ignores it; remove it",
        "  restdemo:alarmEmail applies to AWS stacks only (platform aws): the local stack ignores it; remove it",
    ]  # managerCount 1 is its default: the CLI passes Pulumi.yaml's defaults as if they were set


def test_no_message_shows_a_regular_expression():
    """Every setting with a pattern says in words what it takes."""
    from infra.config.settings import PATTERN_WORDS

    for name, field in Settings.model_fields.items():
        patterns = [m.pattern for m in field.metadata if getattr(m, "pattern", None)]
        allowed = (field.json_schema_extra or {}).get("allowed")
        assert all(allowed or pattern in PATTERN_WORDS for pattern in patterns), name
    assert error_of({**AWS_OK, "restdemo:certificateArn": "arn:aws:acm:eu-west-1:123:cert/x"}).endswith(
        ": must be an ACM certificate ARN: arn:aws:acm:<region>:<12-digit account>:certificate/<id>"
    )
    assert "must be a subnet id: subnet- and 8 or 17 hexadecimal digits" in error_of(
        {**AWS_OK, "restdemo:existingVpcId": "vpc-0123abcd", "restdemo:existingPublicSubnetIds": '["sub-1"]'}
    )
    assert "^" not in error_of({"restdemo:version": "-bad", "restdemo:buildBase": "UPPER"})


def test_a_certificate_needs_the_domain_it_covers_and_a_domain_needs_a_zone_or_a_certificate():
    """A url of https://<the ALB's name> is on no certificate of yours: make up and make status would
    fail the check of every stack with certificateArn alone."""
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0f0e0d0c-0000-4000-8000-000000000000"
    assert error_of({**AWS_OK, "restdemo:certificateArn": arn}).splitlines()[1:] == [
        "  restdemo:certificateArn needs restdemo:domainName, the name your certificate covers: the url output and "
        "make up/status use it (the load balancer's own name is not on your certificate); add restdemo:hostedZoneId "
        "for an alias record, or point your DNS at the loadBalancerDnsName output"
    ]
    assert error_of({**AWS_OK, "restdemo:domainName": "app.example.com"}).splitlines()[1:] == [
        "  restdemo:domainName needs restdemo:hostedZoneId, the Route 53 zone its certificate is validated in and its "
        "alias record made in (or your own restdemo:certificateArn for it)"
    ]
    assert error_of({**AWS_OK, "restdemo:hostedZoneId": "Z123"}).splitlines()[1:] == [
        "  restdemo:hostedZoneId goes with restdemo:domainName: the name to make the records for"
    ]
    for fine in (
        {"restdemo:certificateArn": arn, "restdemo:domainName": "app.example.com"},
        {"restdemo:domainName": "app.example.com", "restdemo:hostedZoneId": "Z123"},
    ):
        parse_settings({**AWS_OK, **fine})
    assert 'restdemo:domainName = "App.Example.com": must be a DNS name in lower case' in error_of(
        {**AWS_OK, "restdemo:domainName": "App.Example.com", "restdemo:hostedZoneId": "Z123"}
    )
    assert 'restdemo:hostedZoneId = "/hostedzone/Z123": must be a Route 53 hosted zone id' in error_of(
        {**AWS_OK, "restdemo:domainName": "app.example.com", "restdemo:hostedZoneId": "/hostedzone/Z123"}
    )


@pytest.mark.parametrize("context", [".pulumi", ".git", ".venv/lib", "app/../.git/refs"])
def test_a_build_context_inside_a_dot_directory_of_the_repository_is_refused(context):
    """Its files go to BuildKit: the project's state and its passphrase (.pulumi/), .git, .venv."""
    from infra.config.settings import PROJECT_DIR

    (PROJECT_DIR / context).mkdir(parents=True, exist_ok=True) if context == ".pulumi" else None
    message = error_of({"restdemo:buildContext": context, "restdemo:healthCheck": "[]"})
    assert f"restdemo:buildContext = {context}: is or holds ." in message
    assert "a dot-directory of the repository" in message


def test_a_context_holding_the_state_is_refused_and_one_outside_the_repository_is_not(tmp_path):
    from infra.config.settings import PROJECT_DIR

    outside = tmp_path / "shop"
    outside.mkdir()
    (outside / ".git").mkdir()  # its own repository: fine
    (outside / "Dockerfile").write_text('FROM scratch\nHEALTHCHECK CMD ["/check"]\n')
    parse_settings({"restdemo:buildContext": str(outside), "restdemo:healthCheck": "[]", "restdemo:buildTarget": ""})
    holding = PROJECT_DIR / "tests" / "e2e" / "second_app" / ".pulumi"
    holding.mkdir()
    try:
        assert "is or holds tests/e2e/second_app/.pulumi" in error_of(
            {"restdemo:buildContext": "tests/e2e/second_app", "restdemo:healthCheck": "[]"}
        )
    finally:
        holding.rmdir()


def test_the_region_is_one_aws_has():
    """It goes into user data, unit files and AWS CLI arguments: a crafted one would run commands."""
    assert error_of({**AWS_OK, "aws:region": "eu-west-1'; touch /tmp/owned; '"}).splitlines()[1:] == [
        "  aws:region = \"eu-west-1'; touch /tmp/owned; '\": is not an AWS region (the aws partition's, as "
        "botocore's endpoint data lists them)"
    ]
    assert "did you mean eu-west-1?" in error_of({**AWS_OK, "aws:region": "eu-wset-1"})
    assert parse_settings({**AWS_OK, "aws:region": "us-east-2"}).aws_region == "us-east-2"
    assert "is not an AWS region" in error_of({**AWS_OK, "aws:region": "cn-north-1"})  # arn:aws-cn: ARNs


def test_the_runbook_address_is_a_link_a_mail_client_opens():
    assert error_of({**AWS_OK, "restdemo:runbookUrl": "docs/operations.md"}).splitlines()[1:] == [
        '  restdemo:runbookUrl = "docs/operations.md": must be an https:// address without a #fragment, quotes, '
        "backslashes or angle brackets, such as https://github.com/your-org/your-repo/blob/main/docs/operations.md"
    ]
    for bad in ('https://wiki.example.com/"runbook"', "https://wiki.example.com/<team>/runbook"):
        assert "restdemo:runbookUrl" in error_of({**AWS_OK, "restdemo:runbookUrl": bad})
    url = "https://github.com/example/restdemo/blob/main/docs/operations.md"
    assert parse_settings({**AWS_OK, "restdemo:runbookUrl": url}).runbook_url == url


# Your service: the image contract as settings (docs/your-app.md).

SECOND_APP = "tests/e2e/second_app"


def test_restdemo_is_the_default_service():
    settings = parse_settings({})
    assert (settings.service_name, settings.build_context, settings.dockerfile, settings.build_target) == (
        "restdemo",
        "app",
        "Dockerfile",
        "",
    )
    # Empty builds the last stage; the build is told its name, as before the default was empty.
    assert (settings.image_target, settings.build_args) == ("runtime", [])
    assert (settings.container_port, settings.health_check_path, settings.service_environment) == (8000, "/health", [])
    assert settings.health_check == ["CMD", "restdemo-cli", "show", "health", "--timeout", "4"]


def write_dockerfile(directory, text: str, name: str = "Dockerfile") -> str:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text)
    return str(directory)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"restdemo:serviceName": "My_App"},
            'restdemo:serviceName = "My_App": must be 1-53 lower-case letters, digits or hyphens, starting with a '
            "letter, not ending with a hyphen",
        ),
        (
            {"restdemo:serviceName": "a" * 54},
            f'restdemo:serviceName = "{"a" * 54}": must be 1-53 lower-case letters',
        ),
        ({"restdemo:containerPort": "0"}, 'restdemo:containerPort = "0": must be at least 1'),
        (
            {"restdemo:healthCheck": '["restdemo-cli", "show", "health"]'},
            'restdemo:healthCheck = ["restdemo-cli", "show", "health"]: must start with CMD and name a program',
        ),
        (
            {"restdemo:healthCheck": '["CMD"]'},
            'restdemo:healthCheck = ["CMD"]: must start with CMD and name a program',
        ),
        (
            {"restdemo:healthCheck": '["CMD-SHELL", "curl", "-f"]'},
            "be CMD-SHELL and one shell command",
        ),
        (
            {"restdemo:healthCheck": '["NONE"]'},
            'restdemo:healthCheck = ["NONE"]: a service needs a health check: a rolling update waits',
        ),
        (
            {"restdemo:healthCheck": "image"},
            'restdemo:healthCheck = "image": must be a list such as ["CMD", "/bin/check", "--quick"], or []',
        ),
        (
            {"restdemo:healthCheckPath": "health"},
            'restdemo:healthCheckPath = "health": must be a path starting with /, up to 1024 characters',
        ),
        (
            {"restdemo:healthCheckPath": "/" + "a" * 1024},
            "must be a path starting with /, up to 1024 characters",
        ),
        (
            {"restdemo:serviceEnvironment": '["LOG_LEVEL"]'},
            'restdemo:serviceEnvironment = ["(not NAME=value)"]: entry 1 ((not NAME=value)) is not NAME=value',
        ),
        (
            {"restdemo:serviceEnvironment": '["1X=a"]'},
            "entry 1 ((not NAME=value)) is not NAME=value with a NAME of letters, digits and underscores, not starting",
        ),
        (
            {"restdemo:serviceEnvironment": '["VER=v9"]'},
            "VER is set from restdemo:version; leave it out",
        ),
        (
            {"restdemo:serviceEnvironment": '["A=1", "A=2"]'},
            "A is given twice",
        ),
        (
            {"restdemo:buildContext": "no/such/dir"},
            "restdemo:buildContext = no/such/dir: no such directory in",
        ),
        (
            {"restdemo:dockerfile": "Containerfile"},
            "restdemo:dockerfile = Containerfile: no such file in app",
        ),
        (
            {"restdemo:buildTarget": "serve"},
            "restdemo:buildTarget = serve: app/Dockerfile has no stage of that name "
            "(its named stages: build, collect, runtime; empty builds the last)",
        ),
        (
            # restdemo's runtime stage has a HEALTHCHECK; its collect stage none.
            {"restdemo:healthCheck": "[]", "restdemo:buildTarget": "collect"},
            "restdemo:healthCheck = []: the image built from app/Dockerfile has no HEALTHCHECK of its own",
        ),
    ],
)
def test_the_service_settings_name_what_is_allowed(config, message):
    assert message in error_of(config)


def test_the_images_own_healthcheck_is_found_through_the_stages_it_is_built_on(tmp_path):
    context = write_dockerfile(
        tmp_path / "svc",
        "FROM python:3.11-slim AS base\n"
        'HEALTHCHECK --interval=2s \\\n    CMD ["python", "/check.py"]\n'
        'FROM base AS serve\nCMD ["python", "/serve.py"]\n',
    )
    settings = parse_settings(
        {"restdemo:buildContext": context, "restdemo:buildTarget": "serve", "restdemo:healthCheck": "[]"}
    )
    assert settings.health_check == [] and settings.time_to_healthy() == 2.0
    # 3 replicas, one at a time: 3 x 2 s to healthy, 2 x 15 s between batches.
    assert settings.rollout_lower_bound() == 36.0


def test_a_healthcheck_none_in_the_target_stage_leaves_the_image_without_one(tmp_path):
    context = write_dockerfile(
        tmp_path / "svc", 'FROM x AS base\nHEALTHCHECK CMD ["true"]\nFROM base AS serve\nHEALTHCHECK NONE\n'
    )
    message = error_of(
        {"restdemo:buildContext": context, "restdemo:buildTarget": "serve", "restdemo:healthCheck": "[]"}
    )
    assert "has no HEALTHCHECK of its own to use" in message


def test_an_empty_target_builds_the_last_stage_and_a_dockerfile_elsewhere_in_the_context(tmp_path):
    context = write_dockerfile(tmp_path / "svc", 'FROM x\nHEALTHCHECK --interval=1m CMD ["true"]\n', "serve.Dockerfile")
    settings = parse_settings(
        {
            "restdemo:buildContext": context,
            "restdemo:dockerfile": "serve.Dockerfile",
            "restdemo:buildTarget": "",
            "restdemo:healthCheck": "[]",
        }
    )
    assert settings.dockerfile_path == tmp_path / "svc" / "serve.Dockerfile"
    assert settings.time_to_healthy() == 60.0


def test_the_second_app_of_the_tests_is_a_valid_service():
    settings = parse_settings(
        {
            "restdemo:serviceName": "second-app",
            "restdemo:buildContext": SECOND_APP,
            "restdemo:buildTarget": "serve",
            "restdemo:containerPort": "9090",
            "restdemo:healthCheck": "[]",
            "restdemo:healthCheckPath": "/ready",
            "restdemo:serviceEnvironment": '["GREETING=hello, swarm", "WORKERS=2"]',
        }
    )
    assert (settings.service_name, settings.container_port, settings.time_to_healthy()) == ("second-app", 9090, 2.0)
    assert settings.service_environment == ["GREETING=hello, swarm", "WORKERS=2"]


def test_restdemos_own_check_is_refused_for_another_services_image(tmp_path):
    """A newcomer who points buildContext at their app and leaves healthCheck: every task failed
    `exec restdemo-cli`, and up hung until convergeTimeout (10 minutes)."""
    context = write_dockerfile(tmp_path / "svc", "FROM x AS runtime\n")
    assert error_of({"restdemo:buildContext": context}) == (
        "invalid stack settings:\n  restdemo:healthCheck is restdemo's own (restdemo-cli), but "
        f"restdemo:buildContext = {context}: give your service's check, or [] for its image's HEALTHCHECK"
    )


@pytest.mark.parametrize("context", [".", "..", "app/.."])
def test_a_build_context_holding_the_project_is_refused(context):
    """It would send .pulumi/ (the state and the local passphrase), .git and .venv to the build."""
    assert "holds the whole project (its .pulumi/ state and passphrase" in error_of({"restdemo:buildContext": context})


@pytest.mark.parametrize("name", ["restdemo-agent", "ingress", "bridge", "host", "none"])
def test_names_the_program_or_docker_already_use_are_refused(name):
    assert f'restdemo:serviceName = "{name}": is taken' in error_of({"restdemo:serviceName": name})


def test_an_empty_word_in_the_check_is_refused():
    assert "has an empty word" in error_of({"restdemo:healthCheck": '["CMD", ""]'})


def test_an_environment_error_shows_names_never_values():
    message = error_of({"restdemo:serviceEnvironment": '["DB_PASSWORD hunter2", "TOKEN=s3cret"]'})
    assert "hunter2" not in message and "s3cret" not in message
    assert message.endswith(
        'restdemo:serviceEnvironment = ["(not NAME=value)", "TOKEN=..."]: entry 1 ((not NAME=value)) is not '
        "NAME=value with a NAME of letters, digits and underscores, not starting with a digit"
    )


def test_a_dockerfile_whose_healthcheck_does_not_parse_names_the_setting_and_file(tmp_path):
    context = write_dockerfile(tmp_path / "svc", "FROM x AS serve\nHEALTHCHECK --every=5s CMD true\n")
    message = error_of(
        {"restdemo:buildContext": context, "restdemo:buildTarget": "serve", "restdemo:healthCheck": "[]"}
    )
    assert message.startswith(
        f"invalid stack settings:\n  restdemo:healthCheck = []: {context}/Dockerfile: HEALTHCHECK"
    )


def test_a_secret_service_environment_is_refused_it_would_be_plain_text_in_the_spec():
    with pytest.raises(SettingsError) as caught:
        parse_settings({"restdemo:serviceEnvironment": '["TOKEN=x"]'}, frozenset({"restdemo:serviceEnvironment"}))
    assert str(caught.value) == (
        "invalid stack settings:\n  restdemo:serviceEnvironment is a secret in the stack file, but its values reach "
        "the service spec, Pulumi's state and docker service inspect in plain text; keep secrets out of it "
        "(docs/your-app.md)"
    )


# What breaks at deploy and not before, caught by the settings (make check).

PODINFO_LIKE = """\
ARG GO_VERSION
FROM golang:${GO_VERSION} AS builder
ARG REVISION
ARG LDFLAGS
RUN go build -ldflags "$LDFLAGS -X main.rev=$REVISION" -o /podinfo
FROM alpine:3.20
COPY --from=builder /podinfo /podinfo
EXPOSE 9898
HEALTHCHECK CMD ["wget", "-qO-", "localhost:9898/healthz"]
"""


def podinfo(tmp_path, **extra: str) -> dict:
    context = write_dockerfile(tmp_path / "podinfo", PODINFO_LIKE)
    return {
        "restdemo:serviceName": "podinfo",
        "restdemo:buildContext": context,
        "restdemo:containerPort": "9898",
        "restdemo:healthCheck": "[]",
        "restdemo:healthCheckPath": "/healthz",
        "restdemo:buildArgs": '["GO_VERSION=1.23", "LDFLAGS=-s"]',
    } | extra


def test_a_third_party_dockerfile_builds_its_last_stage_by_default(tmp_path):
    settings = parse_settings(podinfo(tmp_path))
    assert (settings.build_target, settings.image_target) == ("", "")
    assert settings.build_args == ["GO_VERSION=1.23", "LDFLAGS=-s"]


def test_a_container_port_the_image_does_not_expose_is_refused(tmp_path):
    assert error_of(podinfo(tmp_path, **{"restdemo:containerPort": "8080"})).splitlines()[1:] == [
        f"  restdemo:containerPort = 8080: the image built from {tmp_path}/podinfo/Dockerfile EXPOSEs 9898 only; "
        "set containerPort to the port your service listens on (or PORT=8080 in restdemo:serviceEnvironment, when "
        "that is how it is told)"
    ]


def test_an_exec_check_written_as_one_string_is_refused_with_both_right_forms():
    assert error_of({"restdemo:healthCheck": '["CMD", "curl -f localhost/healthz"]'}).splitlines()[1:] == [
        '  restdemo:healthCheck = ["CMD", "curl -f localhost/healthz"]: the exec form runs a program named '
        '"curl -f localhost/healthz"; give each word on its own, ["CMD", "curl", "-f", "localhost/healthz"], '
        'or the shell form, ["CMD-SHELL", "curl -f localhost/healthz"]'
    ]


def test_an_argument_nothing_sets_is_refused_one_line_each(tmp_path):
    config = podinfo(tmp_path) | {"restdemo:buildArgs": "[]"}
    where = f"{tmp_path}/podinfo/Dockerfile"
    assert error_of(config).splitlines()[1:] == [
        f"  restdemo:buildArgs: {where} declares ARG {name} with no default and nothing sets it (the build would "
        f"see it empty); set it in restdemo:buildArgs ({name}=...) or give it a default"
        for name in ("GO_VERSION", "LDFLAGS")  # REVISION: the program sets it
    ]


@pytest.mark.parametrize(
    ("build_args", "message"),
    [
        ('["VERSION=2"]', 'restdemo:buildArgs = ["VERSION=..."]: VERSION is set by the program from restdemo:version'),
        ('["REVISION=x"]', "REVISION is set by the program (the commit); leave it out"),
        ('["BUILD_BASE=x"]', "BUILD_BASE is set from restdemo:buildBase; leave it out"),
        ('["1X=x"]', "entry 1 ((not NAME=value)) is not NAME=value with a NAME of letters, digits and underscores"),
        ('["A=1", "A=2"]', "A is given twice"),
        ('{"A": "1"}', 'restdemo:buildArgs: must be a list, such as ["a", "b"]'),
    ],
)
def test_build_arguments_name_what_is_wrong(build_args, message):
    assert message in error_of({"restdemo:buildArgs": build_args})


def test_build_arguments_are_never_a_secret_they_stay_in_the_images_history():
    with pytest.raises(SettingsError, match=r"restdemo:buildArgs is a secret in the stack file, but build arguments"):
        parse_settings({"restdemo:buildArgs": '["TOKEN=x"]'}, frozenset({"restdemo:buildArgs"}))


def test_a_prebuilt_image_goes_through_a_one_line_dockerfile_with_its_check_and_port_given(tmp_path):
    """docs/your-app.md: what the base image brings (HEALTHCHECK, EXPOSE) is not read, so the
    check must be given and the port is not compared."""
    context = write_dockerfile(tmp_path / "podinfo", "FROM ghcr.io/stefanprodan/podinfo:6.7.0\n")
    given = {
        "restdemo:serviceName": "podinfo",
        "restdemo:buildContext": context,
        "restdemo:containerPort": "9898",
        "restdemo:healthCheck": '["CMD", "podcli", "check", "http", "localhost:9898/healthz"]',
        "restdemo:healthCheckPath": "/healthz",
    }
    settings = parse_settings(given)
    assert (settings.image_target, settings.container_port) == ("", 9898)
    assert "has no HEALTHCHECK of its own to use" in error_of(given | {"restdemo:healthCheck": "[]"})


def test_no_check_across_settings_speaks_of_a_default_that_stood_in_for_an_invalid_value():
    """replicas: six is invalid; a rollout's time worked out from the default 3 would be a figure nobody wrote."""
    assert error_of({"restdemo:replicas": "six", "restdemo:convergeTimeout": "30s"}).splitlines() == [
        "invalid stack settings:",
        '  restdemo:replicas = "six": must be a whole number',
    ]


def test_a_one_string_check_with_shell_syntax_is_offered_the_shell_form_only():
    check = '["CMD", "curl -f http://localhost:8000/health || exit 1"]'
    assert error_of({"restdemo:healthCheck": check}).splitlines()[1] == (
        '  restdemo:healthCheck = ["CMD", "curl -f http://localhost:8000/health || exit 1"]: the exec form runs a '
        'program named "curl -f http://localhost:8000/health || exit 1"; write it in the shell form, '
        '["CMD-SHELL", "curl -f http://localhost:8000/health || exit 1"]'
    )


def test_a_port_told_by_the_environment_is_not_held_to_expose():
    """restdemo reads PORT: EXPOSE 8000 is documentation, PORT=9000 is where it listens."""
    settings = parse_settings({"restdemo:containerPort": "9000", "restdemo:serviceEnvironment": '["PORT=9000"]'})
    assert settings.container_port == 9000
    assert "EXPOSEs 8000 only" in error_of({"restdemo:containerPort": "9000"})


@pytest.mark.parametrize("name", ["BUILDKIT_SYNTAX", "BUILDKIT_INLINE_CACHE", "TARGETPLATFORM", "HTTPS_PROXY"])
def test_build_arguments_buildkit_reads_itself_are_refused(name):
    """BUILDKIT_SYNTAX=<image> would hand the build to a frontend a stack file names."""
    assert f"{name} is BuildKit's own (it configures the build, or BuildKit sets it); leave it out" in error_of(
        {"restdemo:buildArgs": f'["{name}=x"]'}
    )


@pytest.mark.parametrize("field", ["buildArgs", "serviceEnvironment"])
def test_an_entry_without_equals_is_never_shown_it_may_be_a_token(field):
    text = error_of({f"restdemo:{field}": '["ghp_R3alT0kenValue0123456789abcdefABCD"]'})
    assert "R3alT0ken" not in text
    assert f'restdemo:{field} = ["(not NAME=value)"]: entry 1 ((not NAME=value)) is not NAME=value' in text


def test_a_dockerfile_that_is_a_device_or_huge_is_refused_unread(tmp_path):
    assert "restdemo:dockerfile = zero: no such file in /dev" in error_of(
        {"restdemo:buildContext": "/dev", "restdemo:dockerfile": "zero"}
    )
    big = write_dockerfile(tmp_path / "big", "FROM x\n" + "RUN true\n" * 200_000)
    assert "is over 1 MiB, which no Dockerfile needs" in error_of({"restdemo:buildContext": big})


def test_only_restdemos_own_build_is_told_its_last_stage_by_name(tmp_path):
    """Another Dockerfile's empty target is left to BuildKit: a stage name the parser misread (a
    << outside RUN, COPY, ADD) must not pick the stage that is built."""
    context = write_dockerfile(
        tmp_path / "svc",
        'FROM alpine AS debug\nLABEL note="see <<EOF"\nFROM alpine AS runtime\nHEALTHCHECK CMD ["true"]\n',
    )
    settings = parse_settings({"restdemo:buildContext": context, "restdemo:healthCheck": "[]"})
    assert (settings.build_target, settings.image_target) == ("", "")
    assert settings.container_healthcheck().test == ["CMD", "true"]  # the runtime stage's, not debug's


# --- replicas that follow the load (ADR 0034) ---


def test_the_count_follows_the_load_above_replicas_up_to_max_replicas():
    settings = parse_settings({"restdemo:maxReplicas": "8", "restdemo:scaleInCooldown": "10m"})
    assert (settings.replicas, settings.max_replicas, settings.scale_cpu_percent) == (3, 8, 60)
    assert (settings.scale_out_cooldown, settings.scale_in_cooldown) == (60.0, 600.0)
    # A rollout may have to replace the most replicas there are: 8 batches of one, not 3.
    assert settings.rollout_lower_bound() == 8 * 5 + 7 * 15


def test_scaling_bounds_out_of_order_or_out_of_range_are_refused_in_one_run():
    assert error_of(
        {
            "restdemo:replicas": "4",
            "restdemo:maxReplicas": "4",
            "restdemo:scaleCpuPercent": "95",
            "restdemo:scaleInCooldown": "25h",
        }
    ).splitlines()[1:] == [
        '  restdemo:scaleCpuPercent = "95": must be at most 90',
        "  restdemo:maxReplicas = 4: must be above restdemo:replicas = 4 (the fewest), or 0 to keep the count fixed",
        "  restdemo:scaleInCooldown = 90000s: at most 24h",
    ]


def test_a_converge_timeout_too_short_for_the_most_replicas_is_refused():
    # 3 replicas roll in 3*5 + 3*15 + 30 = 90 s; 10 take 10*5 + 10*15 + 30 = 230 s.
    assert parse_settings({"restdemo:convergeTimeout": "100s"}).converge_timeout == 100
    message = error_of({"restdemo:convergeTimeout": "100s", "restdemo:maxReplicas": "10"})
    assert "restdemo:convergeTimeout = 100s: a rollout of 10 replicas takes at least 230s" in message
