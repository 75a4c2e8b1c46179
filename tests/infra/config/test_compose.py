"""A stack's Compose files, read by the Docker CLI's own loader: the subset deployed, every other key
refused in one run with what to do instead, the loader's problems in our words, the typed app."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from infra.config.compose import ComposeError, Health, Mount, Port, Rollout, load_app
from infra.config.settings import PROJECT_DIR, SettingsError, parse_settings

pytestmark = pytest.mark.unit

TEST_APP = PROJECT_DIR / "tests" / "e2e" / "compose_app"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def compose_in(directory: Path, text: str) -> Path:
    return write(directory, "compose.yaml", text)


def problems_of(*paths: Path) -> list[str]:
    with pytest.raises(ComposeError) as caught:
        load_app(list(paths))
    return caught.value.problems


def test_every_key_it_would_not_deploy_is_refused_one_line_each_in_one_run(tmp_path):
    compose = compose_in(
        tmp_path,
        """\
        services:
          web:
            image: nginx
            container_name: web
            depends_on: [db]
            privileged: true
            frobnicate: 1
            ports: [{target: 80, published: 80, mode: host, host_ip: 127.0.0.1}]
            networks: {front: {ipv4_address: 10.0.0.9}}
            build: {context: ., secrets: [{source: token, id: x}]}
            deploy: {mode: global, resources: {limits: {pids: 10}}}
            x-anything: allowed
          db:
            image: postgres
            volumes: [data:/var/lib/postgresql/data]
        volumes: {data: {}}
        networks: {front: {driver: bridge}, default: {internal: true}}
        secrets: {token: {environment: TOKEN}}
        x-common: &common {}
        """,
    )
    assert problems_of(compose) == [
        "compose.yaml: services.web.container_name: not supported: swarm names each task itself; remove it",
        "compose.yaml: services.web.depends_on: not supported: swarm starts services in any order (docker stack "
        "deploy ignores it); make the service retry until what it needs answers, and remove it",
        "compose.yaml: services.web.privileged: refused: a service with the host's privileges would hand the node "
        "to whoever controls its image",
        "compose.yaml: services.web.frobnicate: not supported: this program deploys build, command, configs, "
        "deploy, entrypoint, env_file, environment, healthcheck, image, labels, networks, ports, secrets, "
        "stop_grace_period, user and volumes in a service; remove it",
        "compose.yaml: services.web.deploy.mode: not yet: every service is replicated (deploy.replicas); a global "
        "service is not deployed",
        "compose.yaml: services.web.deploy.resources.limits.pids: not supported: this program deploys cpus and "
        "memory in deploy.resources.limits; remove it",
        "compose.yaml: services.web.build.secrets[0].id: not supported: this program deploys source and target in "
        "build.secrets[0]; remove it",
        "compose.yaml: services.web.ports[0].host_ip: not supported: this program deploys mode, protocol, published "
        "and target in ports[0]; remove it",
        "compose.yaml: services.web.networks.front.ipv4_address: not supported: this program deploys aliases in "
        "networks.front; remove it",
        "compose.yaml: services.web.ports[0]: mode host is not supported: ports are published on the routing mesh "
        "(mode ingress), where every node answers for them",
        "compose.yaml: networks.front.driver: a stack's networks are overlay networks; remove it or write overlay",
        "compose.yaml: networks.default: the stack's own network, made by the program; declare another one",
        "compose.yaml: secrets.token.environment: not supported: this program deploys external, file and name in "
        "secrets.token; remove it",
    ]


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ("{image: x, deploy: {replicas: two}}", "services.web.deploy.replicas: must be an integer"),
        (
            "{image: x, healthcheck: {interval: 5parsecs}}",
            "services.web.healthcheck.interval: not a duration (such as 30s, 1m30s)",
        ),
        ("{image: x, ports: [abc]}", "services.web.ports.0: not a port (published:target, such as 8080:80)"),
        ('{image: "${X"}', "services.web.image: a $ that starts no ${VAR} reference; write $$ for a literal $"),
        (
            '{image: "${RESTDEMO_TEST_UNSET:?set it}"}',
            "services.web.image: needs RESTDEMO_TEST_UNSET set in the environment (${RESTDEMO_TEST_UNSET:?...} "
            "requires it)",
        ),
        (
            "{image: x, deploy: {resources: {limits: {memory: 12qq}}}}",
            "deploy.resources.limits.memory: not a size (a number of bytes, or with b, k, m or g: 512m)",
        ),
    ],
)
def test_the_loaders_problem_comes_in_our_words(tmp_path, service, message):
    compose = write(tmp_path, "compose.yaml", f"services:\n  web: {service}\n")
    assert problems_of(compose) == [message]


def test_a_missing_env_file_and_bad_yaml_are_named(tmp_path):
    compose = write(tmp_path, "compose.yaml", "services:\n  web: {image: x, env_file: app.env}\n")
    assert problems_of(compose) == [f"{tmp_path}/app.env: no such file"]
    broken = write(tmp_path, "broken.yaml", "services: [1\n")
    assert problems_of(broken) == ["broken.yaml: not valid YAML at line 2"]


def test_references_and_ports_are_checked_after_the_loader(tmp_path):
    compose = compose_in(
        tmp_path,
        """\
        services:
          web:
            image: x
            environment: [RESTDEMO_TEST_NEVER_SET]
            ports: ["8080:80", "9000"]
            secrets: [nope]
            configs: [missing]
            networks: [back]
          api:
            ports: ["8080:80"]
            secrets: [key]
        secrets: {key: {file: ./key.txt}}
        """,
    )
    assert problems_of(compose) == [
        "services.web.environment: RESTDEMO_TEST_NEVER_SET has no value (the environment the file was read in "
        "does not set it); give it one",
        "services.api: needs image (a prebuilt image) or build (a directory with a Dockerfile)",
        "services.web.secrets: nope is not declared under the top-level secrets",
        "services.web.configs: missing is not declared under the top-level configs",
        "services.web.networks: back is not declared under the top-level networks",
        "services.web.ports: 8080/tcp is published by services.api already",
        "services.web.ports: 9000 needs a published port (published:target)",
        f"secrets.key.file: {tmp_path}/key.txt does not exist",
    ]


def test_an_overlay_changes_what_it_names_and_keeps_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("API_IMAGE", "127.0.0.1:5000/tests/api:1")
    overlay = write(tmp_path, "more.yaml", "services:\n  web:\n    deploy: {replicas: 5}\n")
    app = load_app([TEST_APP / "compose.yaml", overlay])
    assert {s.name: s.replicas for s in app.services} == {"admin": 2, "api": 1, "web": 5}


def test_the_test_app_is_typed_as_docker_stack_deploy_reads_it(monkeypatch):
    monkeypatch.setenv("API_IMAGE", "127.0.0.1:5000/tests/api:1")
    monkeypatch.delenv("RELEASE", raising=False)
    app = load_app([TEST_APP / "compose.yaml"])
    web = {s.name: s for s in app.services}["web"]
    api = {s.name: s for s in app.services}["api"]
    assert [s.name for s in app.services] == ["admin", "api", "web"]
    assert (web.build.context, web.build.dockerfile, web.build.target) == (TEST_APP / "app", "Dockerfile", "")
    assert web.environment == {"ROLE": "web", "RELEASE": "1", "UPSTREAM": "api:8080", "NOTES": "/data/notes"}
    assert web.ports == [Port(target=8080, published=8081, protocol="tcp")]
    assert web.secrets == [Mount(source="greeting", target="/run/secrets/greeting")]
    assert web.update == Rollout(parallelism=1, delay=1.0, failure_action="rollback", monitor=5.0, order="start-first")
    assert (web.replicas, web.stop_grace_period, web.networks, web.healthcheck) == (2, 10.0, {"default": []}, None)
    assert (api.image, api.build, api.ports) == ("127.0.0.1:5000/tests/api:1", None, [])
    assert app.secrets["greeting"].file is None and app.secrets["greeting"].name == "greeting"


def test_a_healthcheck_string_becomes_the_shell_form(tmp_path):
    compose = write(
        tmp_path, "compose.yaml", "services:\n  web: {image: x, healthcheck: {test: curl -f localhost, interval: 5s}}\n"
    )
    web = load_app([compose]).services[0]
    assert web.healthcheck == Health(test=["CMD-SHELL", "curl -f localhost"], interval=5.0)


# --- with the stack's settings (make check) ---


def compose_stack(path: Path, **more: str) -> dict[str, str]:
    return {"restdemo:composeFile": json.dumps([str(path)]), **more}


def settings_error(config: dict, secret_keys: frozenset[str] = frozenset()) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        parse_settings(config, secret_keys)
    return str(caught.value).splitlines()[1:]


SECRET = frozenset({"restdemo:secrets"})


def test_a_compose_stack_reads_its_app_with_the_settings(monkeypatch):
    monkeypatch.setenv("API_IMAGE", "127.0.0.1:5000/tests/api:1")
    settings = parse_settings(
        compose_stack(TEST_APP / "compose.yaml", **{"restdemo:secrets": '["greeting=hello", "database=x"]'}), SECRET
    )
    assert [s.name for s in settings.app.services] == ["admin", "api", "web"]
    assert parse_settings({}).app is None


def test_the_single_services_settings_and_aws_and_a_missing_secret_are_named_in_one_run(monkeypatch):
    monkeypatch.setenv("API_IMAGE", "127.0.0.1:5000/tests/api:1")
    config = compose_stack(TEST_APP / "compose.yaml", **{"restdemo:replicas": "2", "restdemo:containerPort": "9000"})
    assert [line.strip() for line in settings_error(config)] == [
        "restdemo:replicas describes the single service; with restdemo:composeFile set deploy.replicas in the "
        "Compose file's services instead",
        "restdemo:containerPort describes the single service; with restdemo:composeFile set ports in the Compose "
        "file's services instead",
        # Without restdemo:database, `database` is a secret as any other.
        "restdemo:composeFile: secrets.database is external, but restdemo:secrets has no database; add it: pulumi "
        "config set --secret --path 'restdemo:secrets[0]' \"database=...\"",
        "restdemo:composeFile: secrets.greeting is external, but restdemo:secrets has no greeting; add it: pulumi "
        "config set --secret --path 'restdemo:secrets[0]' \"greeting=...\"",
    ]


def test_secrets_in_plain_text_are_refused_without_their_value():
    lines = settings_error({"restdemo:secrets": '["token=hunter2"]'})
    assert [line.strip() for line in lines] == [
        "restdemo:secrets is in the stack file in plain text; set each with pulumi config set --secret --path "
        "'restdemo:secrets[N]' 'NAME=value' (and rotate any value that was in plain text)"
    ]
    assert "hunter2" not in "".join(lines)


def test_a_compose_build_and_health_check_are_checked_as_the_single_services(tmp_path):
    (tmp_path / "svc").mkdir()
    write(tmp_path / "svc", "Dockerfile", "FROM scratch AS one\nARG TOKEN\nEXPOSE 80\nRUN echo $TOKEN\n")
    compose = compose_in(
        tmp_path,
        """\
        services:
          web:
            build: {context: ./svc, target: two}
          api:
            build: {context: ./svc}
            ports: ["8080:8080"]
            healthcheck: {test: ["CMD", "curl -f localhost"]}
          gone:
            build: {context: ./nope}
        """,
    )
    assert [line.strip() for line in settings_error(compose_stack(compose))] == [
        'restdemo:composeFile: services.api.healthcheck.test the exec form runs a program named "curl -f '
        'localhost"; give each word on its own, ["CMD", "curl", "-f", "localhost"], or the shell form, '
        '["CMD-SHELL", "curl -f localhost"]',
        f"restdemo:composeFile: services.api.ports: 8080: the image built from {tmp_path}/svc/Dockerfile EXPOSEs "
        "80 only; publish the port the service listens on (or set PORT=8080 in its environment, when that is "
        "how it is told)",
        f"restdemo:composeFile: services.api.build.args: {tmp_path}/svc/Dockerfile declares ARG TOKEN with no "
        "default and nothing sets it (the build would see it empty); set it in services.api.build.args "
        "(TOKEN=...) or give it a default",
        f"restdemo:composeFile: services.gone.build.context = {tmp_path}/nope: no such directory in {PROJECT_DIR} "
        "(the directory your service's image is built from)",
        f"restdemo:composeFile: services.web.build.target = two: {tmp_path}/svc/Dockerfile has no stage of that "
        "name (its named stages: one; empty builds the last)",
    ]


def test_on_aws_each_published_port_is_reached_through_the_load_balancer_one_way(tmp_path):
    from tests.infra.config.test_settings import AWS_OK

    compose = compose_in(
        tmp_path,
        """\
        services:
          web:
            image: x
            healthcheck: {test: [CMD, /bin/check]}
            ports: ["8080:80", "8443:443"]
          shop:
            image: x
            healthcheck: {test: [CMD, /bin/check]}
            ports: ["8081:80"]
          api:
            image: x
            healthcheck: {test: [CMD, /bin/check]}
            ports: ["8082:80"]
            x-restdemo: {host: api.example.com}
          docs:
            image: x
            healthcheck: {test: [CMD, /bin/check]}
            ports: ["8083:80"]
            x-restdemo: {host: api.example.com}
          worker:
            image: x
            healthcheck: {test: [CMD, /bin/check]}
            x-restdemo: {path: /work}
        """,
    )
    config = {**AWS_OK, **compose_stack(compose), "restdemo:domainName": "app.example.com"}
    config["restdemo:hostedZoneId"] = "Z0123456789ABC"
    assert [line.strip() for line in settings_error(config)] == [
        "restdemo:composeFile: services.web.ports: on AWS a service publishes one tcp port, which the load balancer "
        "sends HTTP to",
        "restdemo:composeFile: services.worker.x-restdemo: a route for a service that publishes no port",
        "restdemo:composeFile: services shop, web publish ports with no route: on AWS one at most is the load "
        "balancer's default; give the others x-restdemo.host or x-restdemo.path",
        "restdemo:composeFile: services.docs.x-restdemo: api.example.com is services.api's",
    ]


def test_a_route_is_a_host_name_or_a_path_and_nothing_else(tmp_path):
    compose = compose_in(
        tmp_path,
        """\
        services:
          web:
            image: x
            x-restdemo: {host: API.Example.com, path: "/a b", weight: 2}
        """,
    )
    assert problems_of(compose) == [
        "compose.yaml: services.web.x-restdemo.weight: not supported: this program deploys health_check_path, host, "
        "path and scale in x-restdemo; remove it",
        "compose.yaml: services.web.x-restdemo.host: API.Example.com is not a host name in lower case (such as "
        "api.example.com)",
        "compose.yaml: services.web.x-restdemo.path: /a b is not a path such as /api (letters, digits, . _ ~ / -)",
        "compose.yaml: services.web.x-restdemo: host or path, not both: a service is reached one way",
    ]


def test_a_file_may_not_read_the_deployers_credentials_or_files_outside_its_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    (tmp_path / "app").mkdir()
    compose = write(
        tmp_path / "app",
        "compose.yaml",
        """\
        services:
          web:
            image: x
            environment: {K: "${AWS_SECRET_ACCESS_KEY}"}
            env_file: /root/.netrc
            secrets: [pp]
        secrets: {pp: {file: ../../.pulumi/passphrase}}
        """,
    )
    problems = problems_of(compose)
    assert problems == [
        "compose.yaml: ${AWS_SECRET_ACCESS_KEY}: names the deployer's credentials, which a Compose file may not read; "
        "give the value another name",
        f"compose.yaml: services.web.env_file: /root/.netrc is outside {tmp_path}/app; keep what the app reads beside "
        "its Compose file",
        f"compose.yaml: secrets.pp.file: ../../.pulumi/passphrase is outside {tmp_path}/app; keep what the app reads "
        "beside its Compose file",
    ]
    assert "do-not-leak" not in "".join(problems)


def test_a_malformed_secrets_setting_never_shows_a_value():
    for given, message in (
        ('["DB=hunter2", "DB=other"]', "restdemo:secrets: DB is given twice"),
        # base64 pasted without a name: its padding is no NAME=value
        (
            '["aHVudGVyMg=="]',
            "restdemo:secrets: entry 1 is not NAME=value with a NAME of letters, digits, '.', '_' and '-', and a value",
        ),
        ('"DB=hunter2"', 'restdemo:secrets: must be a list, such as ["a", "b"]'),
    ):
        with pytest.raises(SettingsError) as caught:
            parse_settings({"restdemo:secrets": given}, SECRET)
        assert str(caught.value).splitlines()[1:] == [f"  {message}"], given


def test_a_prebuilt_image_needs_a_test_not_just_timings(tmp_path):
    compose = write(tmp_path, "compose.yaml", "services:\n  db: {image: postgres, healthcheck: {interval: 5s}}\n")
    assert [line.strip() for line in settings_error(compose_stack(compose))] == [
        "restdemo:composeFile: services.db.healthcheck: a prebuilt image needs a test here (the program cannot read "
        "the image's own; a rolling update waits for each new task to turn healthy)"
    ]


def test_what_the_stack_makes_of_each_service_is_checked(tmp_path):
    compose = compose_in(
        tmp_path,
        """\
        services:
          web:
            image: x
            healthcheck: {test: [CMD, /bin/check], interval: 10s}
            ports: ["5000:80", "2377:81", "44554:82"]
            deploy:
              replicas: 10
              update_config: {delay: 1m, max_failure_ratio: 0.25}
              resources: {limits: {memory: 64M}, reservations: {memory: 128M, cpus: "2"}}
          a-service-name-of-thirty-chars:
            image: x
            healthcheck: {test: [CMD, /bin/check]}
        """,
    )
    config = compose_stack(compose, **{"restdemo:serviceName": "a-stack-name-of-forty-characters-exactly"})
    assert [line.strip() for line in settings_error(config)] == [
        "restdemo:composeFile: services.a-service-name-of-thirty-chars: its name in the swarm, "
        "a-stack-name-of-forty-characters-exactly_a-service-name-of-thirty-chars..., would be 71 characters, "
        "over swarm's 63; shorten it or restdemo:serviceName",
        "restdemo:composeFile: services.web.ports: 5000 is the local registry's (restdemo:localRegistryPort); "
        "publish another",
        "restdemo:composeFile: services.web.ports: 2377 is Docker's; publish another",
        "restdemo:composeFile: services.web.ports: 44554 is the node agent's; publish another",
        "restdemo:composeFile: services.web.deploy.resources.reservations.memory: above its limit",
        "restdemo:composeFile: services.web.deploy.resources.reservations.cpus: above the stack's limit (0.5) "
        "where it gives none",
        "restdemo:composeFile: services.web.deploy.update_config.max_failure_ratio = 0.25: in tenths (0.1, 0.2, "
        "...); the provider reads it back in tenths, and would update the service on every up",
        "restdemo:composeFile: restdemo:convergeTimeout = 600s: services.web's rollout takes at least 730s with its "
        "update_config and health check; allow at least that",
    ]


def test_registry_logins_are_secrets_and_never_shown():
    lines = settings_error({"restdemo:registryLogins": '["ghcr.io=bot:ghp_secret"]'})
    assert [line.strip() for line in lines] == [
        "restdemo:registryLogins is in the stack file in plain text; set each with pulumi config set --secret "
        "--path 'restdemo:registryLogins[N]' 'SERVER=USERNAME:PASSWORD' (and rotate any value that was in plain "
        "text)"
    ]
    lines = settings_error(
        {"restdemo:registryLogins": '["https://ghcr.io=bot:ghp_secret"]'}, frozenset({"restdemo:registryLogins"})
    )
    assert [line.strip() for line in lines] == [
        "restdemo:registryLogins: entry 1 is not SERVER=USERNAME:PASSWORD with a SERVER such as ghcr.io or "
        "registry.example.com:5000 (no https://)"
    ]
    lines = settings_error(
        {"restdemo:registryLogins": '["docker.io=bot:dckr_secret"]'}, frozenset({"restdemo:registryLogins"})
    )
    assert [line.strip() for line in lines] == [
        "restdemo:registryLogins: entry 1: Docker Hub logins are not yet supported (the provider looks them up under "
        "another name); use a public image or another registry"
    ]


def test_on_aws_routes_do_not_nest_names_fit_and_images_are_reachable(tmp_path, monkeypatch):
    from tests.infra.config.test_settings import AWS_OK

    compose = compose_in(
        tmp_path,
        """\
        services:
          api:
            image: 127.0.0.1:5000/api:1
            healthcheck: {test: [CMD, /bin/check]}
            ports: ["8081:80"]
            x-restdemo: {path: /api}
          a-service-of-twenty-one:
            image: x
            healthcheck: {test: [CMD, /bin/check]}
            ports: ["8082:80"]
            x-restdemo: {path: /api/v1}
        """,
    )
    assert [line.strip() for line in settings_error({**AWS_OK, **compose_stack(compose)})] == [
        "restdemo:composeFile: services.api.image: 127.0.0.1:5000/api:1 is in a registry on this machine's "
        "loopback, which the nodes cannot reach; push it to a registry they can",
        "restdemo:composeFile: services.a-service-of-twenty-one: on AWS a service that publishes a port has a name "
        "of 20 characters at most (its target group's name is made from it)",
        "restdemo:composeFile: services.a-service-of-twenty-one.x-restdemo.path: /api/v1 is below services.api's "
        "/api, which would answer it; give paths that do not nest",
    ]
    # Two routes whose names give one priority: refused, not left to AWS's PriorityInUse.
    monkeypatch.setattr("infra.config.settings.route_priority", lambda service, route: 25000)
    worker = compose_in(
        tmp_path,
        """\
        services:
          shop:
            image: x
            healthcheck: {test: [CMD, /bin/check]}
            ports: ["8081:80"]
            x-restdemo: {path: /shop}
          blog:
            image: x
            healthcheck: {test: [CMD, /bin/check]}
            ports: ["8082:80"]
            x-restdemo: {path: /blog}
        """,
    )
    assert [line.strip() for line in settings_error({**AWS_OK, **compose_stack(worker)})] == [
        "restdemo:composeFile: services.shop: its route's priority (25000, from its name) is services.blog's too; "
        "rename one of them"
    ]


def test_on_aws_a_compose_stack_publishes_a_port(tmp_path):
    from tests.infra.config.test_settings import AWS_OK

    compose = compose_in(tmp_path, "services:\n  worker: {image: x, healthcheck: {test: [CMD, /bin/check]}}\n")
    assert [line.strip() for line in settings_error({**AWS_OK, **compose_stack(compose)})] == [
        "restdemo:composeFile: no service publishes a port: on AWS a Compose stack is reached through its load "
        "balancer, which needs one"
    ]


def test_route_priorities_are_fixed_by_name_hosts_before_paths():
    from infra.config.compose import Route, route_priority

    host, path = Route(hosts=("a.example.com",)), Route(path="/a")
    assert route_priority("api", host) == route_priority("api", host) and 1 <= route_priority("api", host) < 25000
    assert 25000 <= route_priority("api", path) < 50000


def test_a_port_bound_to_an_address_and_a_node_port_are_refused(tmp_path):
    compose = compose_in(tmp_path, 'services:\n  web: {image: x, ports: ["127.0.0.1:8080:80"]}\n')
    assert problems_of(compose) == [
        "compose.yaml: services.web.ports[0]: 127.0.0.1:8080:80 binds an address, which swarm ignores (it publishes "
        "on every interface of every node); write published:target"
    ]
    assert [line.strip() for line in settings_error({"restdemo:publishedPort": "44554"})] == [
        "restdemo:publishedPort = 44554: is the node agent's on every node; publish another"
    ]


def test_build_secrets_are_read_though_the_loader_drops_them(tmp_path):
    (tmp_path / "token.txt").write_text("t0ken")
    compose = compose_in(
        tmp_path,
        """\
        services:
          web:
            image: x
            build: {context: ., secrets: [token, {source: npm, target: npmrc}]}
          api:
            image: x
            build: {context: ., secrets: [nope]}
        secrets:
          token: {file: ./token.txt}
          npm: {external: true}
        """,
    )
    assert problems_of(compose) == ["services.api.build.secrets: nope is not declared under the top-level secrets"]
    overlay = write(tmp_path, "more.yaml", "services:\n  api:\n    build: {secrets: [token]}\n")
    app = load_app([compose, overlay])
    builds = {s.name: s.build.secrets for s in app.services}
    assert builds == {"api": {"token": "token"}, "web": {"token": "token", "npmrc": "npm"}}


def test_a_symlink_and_dots_reach_nothing_outside_the_compose_files_directory(tmp_path):
    """The loader takes `..` away as text; the file system follows the link first: both readings must
    stay beside the Compose file."""
    project = tmp_path / "proj"
    (project / "a" / "b").mkdir(parents=True)
    (project / "link").symlink_to(project / "a" / "b")
    (tmp_path / "outside.txt").write_text("TOPSECRET")
    compose = compose_in(
        project,
        """\
        services:
          web:
            image: x
            env_file: link/../../../outside.txt
            build: {context: ., secrets: [tok]}
        secrets:
          tok: {file: link/../../outside.txt}
        """,
    )
    problems = problems_of(compose)
    assert problems == [
        "compose.yaml: services.web.env_file: link/../../../outside.txt is outside "
        f"{project}; keep what the app reads beside its Compose file",
        f"compose.yaml: secrets.tok.file: link/../../outside.txt is outside {project}; keep what the app reads "
        "beside its Compose file",
    ]
    assert "TOPSECRET" not in "".join(problems)


def test_build_secrets_of_the_wrong_shape_are_one_line_each(tmp_path):
    (tmp_path / "bin.dat").write_bytes(b"\xff\xfe")
    compose = compose_in(
        tmp_path,
        """\
        services:
          a: {image: x, build: {context: ., secrets: 5}}
          b: {image: x, build: {context: ., secrets: [{target: x}, "${S}", tok, {source: bin, target: tok}]}}
        secrets:
          tok: {file: ./bin.dat}
          bin: {file: ./bin.dat}
        """,
    )
    assert problems_of(compose) == [
        "compose.yaml: services.a.build.secrets: a list of secret names, or of {source, target}",
        "compose.yaml: services.b.build.secrets[0]: a secret name, or {source, target} with source a name",
        "compose.yaml: services.b.build.secrets[1]: names only, no ${VAR} (the loader does not read build secrets)",
        "compose.yaml: services.b.build.secrets[3]: the id tok is given twice",
    ]
    fixed = compose_in(
        tmp_path,
        "services:\n  b: {image: x, build: {context: ., secrets: [bin]}}\nsecrets:\n  bin: {file: ./bin.dat}\n",
    )
    assert problems_of(fixed) == [
        f"secrets.bin.file: {tmp_path}/bin.dat is not UTF-8 text, which BuildKit takes a build secret as"
    ]


# --- replicas that follow the load (x-restdemo.scale) ---


def test_a_service_scales_between_its_deploy_replicas_and_its_max_replicas(tmp_path):
    from infra.config.compose import Scale

    compose = compose_in(
        tmp_path,
        """\
        services:
          api:
            image: x
            healthcheck: {test: [CMD, /bin/check]}
            deploy: {replicas: 2}
            x-restdemo: {scale: {max_replicas: 6, cpu_percent: 50, in_cooldown: 10m}}
          worker:
            image: x
            healthcheck: {test: [CMD, /bin/check]}
        """,
    )
    api, worker = load_app([compose]).services
    assert (api.replicas, api.scale) == (2, Scale(max_replicas=6, cpu_percent=50, out_cooldown=None, in_cooldown=600))
    assert worker.scale is None


def test_scale_bounds_out_of_order_or_out_of_range_are_refused_one_line_each(tmp_path):
    compose = compose_in(
        tmp_path,
        """\
        services:
          api:
            image: x
            deploy: {replicas: 3}
            x-restdemo: {scale: {max_replicas: 3, cpu_percent: 95, out_cooldown: 60, in_cooldown: 2d, step: 2}}
          web:
            image: x
            x-restdemo: {scale: {max_replicas: 101}}
          worker:
            image: x
            x-restdemo: {scale: 4}
        """,
    )
    where = "compose.yaml: services"
    assert [p for p in problems_of(compose) if "x-restdemo" in p] == [
        f"{where}.api.x-restdemo.scale.step: not supported: this program deploys cpu_percent, in_cooldown, "
        "max_replicas and out_cooldown in x-restdemo.scale; remove it",
        f"{where}.api.x-restdemo.scale.max_replicas: 3 is not a whole number above deploy.replicas (3) and at most 100",
        f"{where}.api.x-restdemo.scale.cpu_percent: 95 is not a whole percent from 10 to 90",
        f"{where}.api.x-restdemo.scale.out_cooldown: 60 is not a duration of at most 24h, such as 1m or 5m",
        f"{where}.api.x-restdemo.scale.in_cooldown: 2d is not a duration of at most 24h, such as 1m or 5m",
        f"{where}.web.x-restdemo.scale.max_replicas: 101 is not a whole number above deploy.replicas (1) and at "
        "most 100",
        f"{where}.worker.x-restdemo.scale: a mapping with max_replicas, and cpu_percent, out_cooldown and "
        "in_cooldown if you like",
    ]
