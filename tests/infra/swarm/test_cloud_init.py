"""Cloud-init rendering, tested directly for managers and workers, and validated by cloud-init itself."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace

import pytest
import yaml

from infra.swarm.cloud_init import USER_DATA_LIMIT, NodeConfig, render
from infra.swarm.cloud_init import setup_script as render_setup
from tests.support.agent_env import worker_node_with
from tests.support.docker_engine import require_tool

pytestmark = pytest.mark.unit

KEY = "arn:aws:kms:eu-west-1:123456789012:key/0b6b1c3e-0000-4000-8000-000000000000"
TLS = {"ca": "/restdemo/dev/tls/ca", "cert": "/restdemo/dev/tls/cert", "key": "/restdemo/dev/tls/key"}


def node(role: str) -> NodeConfig:
    manager = role == "manager"
    return worker_node_with(
        role=role,
        group_name=f"restdemo-dev-{role}s",
        secrets_key=KEY if manager else "",
        **({f"tls_{name}_parameter": parameter for name, parameter in TLS.items()} if manager else {}),
    )


def document(role: str) -> dict:
    text = render(node(role))
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def file(role: str, path: str) -> str:
    return next(f["content"] for f in document(role)["write_files"] if f["path"] == path)


def test_installs_docker_and_starts_units_that_run_at_every_boot():
    """Defect (bootstrap_retry): a once-per-instance `runcmd` under `set -e` ended the setup for good
    at the first error. Now systemd units run the setup and the agent at every boot, retrying."""
    for role in ("manager", "worker"):
        doc = document(role)
        assert doc["packages"] == ["docker"]
        assert doc["runcmd"] == [
            ["systemctl", "daemon-reload"],
            [
                "systemctl",
                "enable",
                "--now",
                "--no-block",
                "restdemo-node-setup.service",
                "restdemo-agent.service",
                "restdemo-daemon-logs.service",
                "restdemo-engine-watchdog.timer",
                "restdemo-replace-me.path",
            ],
        ]
        setup = file(role, "/etc/systemd/system/restdemo-node-setup.service")
        assert "ExecStart=/usr/local/sbin/restdemo-node-setup" in setup and "Restart=on-failure" in setup
        assert "WantedBy=multi-user.target" in setup


def test_containers_log_to_the_stacks_group():
    daemon = json.loads(file("worker", "/etc/docker/daemon.json"))
    assert daemon["log-driver"] == "awslogs"
    assert daemon["log-opts"] == {
        "awslogs-region": "eu-west-1",
        "awslogs-group": "/restdemo/dev",
        "tag": "{{.Name}}/{{.ID}}",
        # A slow CloudWatch Logs must not block the containers' writes (tested in the lab).
        "mode": "non-blocking",
        "max-buffer-size": "4m",
    }
    assert "hosts" not in daemon and "tlsverify" not in daemon


def test_managers_serve_the_docker_api_with_mutual_tls_on_2376():
    daemon = json.loads(file("manager", "/etc/docker/daemon.json"))
    assert daemon["hosts"] == ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"]
    assert daemon["tlsverify"] is True
    assert (daemon["tlscacert"], daemon["tlscert"], daemon["tlskey"]) == (
        "/etc/docker/tls/ca.pem",
        "/etc/docker/tls/cert.pem",
        "/etc/docker/tls/key.pem",
    )
    override = file("manager", "/etc/systemd/system/docker.service.d/restdemo-hosts.conf")
    assert "ExecStart=\nExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock" in override


def test_managers_fetch_tls_material_from_ssm_at_boot_workers_do_not():
    script = file("manager", "/usr/local/sbin/restdemo-node-setup")
    for name, target in (("ca", "ca.pem"), ("cert", "cert.pem"), ("key", "key.pem")):
        assert (
            f"aws ssm get-parameter --with-decryption --name {TLS[name]} --query Parameter.Value --output text "
            f"> /etc/docker/tls/{target}" in script
        )
    assert "chmod 600 /etc/docker/tls/key.pem" in script
    assert "ssm get-parameter" not in file("worker", "/usr/local/sbin/restdemo-node-setup")


def test_the_agent_unit_logs_in_to_ecr_and_runs_the_agent_restarted_always():
    unit = file("worker", "/etc/systemd/system/restdemo-agent.service")
    image = node("worker").agent.image
    lines = unit.splitlines()
    login = file("worker", "/usr/local/sbin/restdemo-ecr-login")
    run = next(line for line in lines if line.startswith("ExecStart="))
    assert "ExecStartPre=/usr/local/sbin/restdemo-ecr-login" in lines
    assert "aws ecr get-login-password --region eu-west-1 | docker login" in login
    assert "--password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com 2>&1" in login
    assert run.endswith(f"--env-file /etc/restdemo/agent.env {image} run")
    assert "--network host -v /var/run/docker.sock:/var/run/docker.sock" in run
    assert "Restart=always" in lines and "WantedBy=multi-user.target" in lines
    assert "Requires=docker.service restdemo-node-setup.service" in lines
    assert "systemctl enable --now docker" in file("worker", "/usr/local/sbin/restdemo-node-setup")


def test_agent_environment_is_the_contract():
    """Every line, in the order written: a new order or a new line is a new launch template, and a
    refresh of every node."""
    lines = file("manager", "/etc/restdemo/agent.env").splitlines()
    assert lines == [
        "RESTDEMO_STACK=dev",
        "AWS_REGION=eu-west-1",
        "RESTDEMO_ROLE=manager",
        "RESTDEMO_STATE_TABLE=restdemo-dev-state",
        "RESTDEMO_SSM_PREFIX=/restdemo/dev",
        "RESTDEMO_LIFECYCLE_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/123456789012/restdemo-dev-lifecycle",
        "RESTDEMO_LOG_GROUP=/restdemo/dev",
        "RESTDEMO_REGISTRY=123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "RESTDEMO_READINESS_PORT=44554",
        "RESTDEMO_GROUP_NAME=restdemo-dev-managers",
        "RESTDEMO_PRUNE_INTERVAL=0",
        "RESTDEMO_BOOTSTRAP_TIMEOUT=900",
        "RESTDEMO_PRIMARY_STALE_AFTER=300",
        f"RESTDEMO_SECRETS_KEY={KEY}",  # the key itself, not its alias (an alias can be re-pointed)
        # The agent's own image, which the leader runs to make a volume's directory.
        f"RESTDEMO_AGENT_IMAGE={node('manager').agent.image}",
        "RESTDEMO_TLS_CA_PARAMETER=/restdemo/dev/tls/ca",
        "RESTDEMO_TLS_CERT_PARAMETER=/restdemo/dev/tls/cert",
        "RESTDEMO_TLS_KEY_PARAMETER=/restdemo/dev/tls/key",
    ]
    worker = file("worker", "/etc/restdemo/agent.env").splitlines()
    assert worker == [*(line.replace("manager", "worker") for line in lines[:13]), lines[14]]


def test_the_agent_reads_the_environment_cloud_init_writes():
    from restdemo_agent.contract import AgentEnvironment

    for role in ("manager", "worker"):
        agent = AgentEnvironment.from_environ(node(role).agent.to_environ())
        assert (agent.role, agent.stack, agent.readiness_port) == (role, "dev", 44554)


def test_the_daemons_the_boots_and_the_ecr_logins_output_is_shipped_too():
    """dockerd's, cloud-init's, the node setup's and every ECR login's journal lines, not the
    agent's own (its container logs through awslogs already: twice would count its metrics twice)."""
    assert "ExecStart=/usr/local/sbin/restdemo-ship-journal" in file(
        "worker", "/etc/systemd/system/restdemo-daemon-logs.service"
    )
    unit = file("worker", "/usr/local/sbin/restdemo-ship-journal")
    shipped = (
        "journalctl -f -o short-iso -b --cursor-file=/var/lib/restdemo/journal.cursor"
        " _SYSTEMD_UNIT=docker.service + UNIT=docker.service + _SYSTEMD_UNIT=cloud-final.service"
        " + UNIT=cloud-final.service + _SYSTEMD_UNIT=restdemo-node-setup.service + UNIT=restdemo-node-setup.service"
        " + _SYSTEMD_UNIT=restdemo-engine-watchdog.service + UNIT=restdemo-engine-watchdog.service"
        " + SYSLOG_IDENTIFIER=restdemo-ecr-login"
    )
    assert shipped in unit
    assert "restdemo-agent.service" not in unit
    assert "--log-driver awslogs" in unit and "awslogs-group=/restdemo/dev" in unit
    assert "--log-opt tag=node/{{.ID}}" in unit


def test_the_ecr_login_keeps_its_exit_status_and_logs_under_its_own_name(tmp_path):
    """A script file, run for real with stand-ins for aws and docker: a failed login fails it
    (pipefail), and no value sits inside another command's quotes (a unit's `bash -c '...'`)."""
    login = file("worker", "/usr/local/sbin/restdemo-ecr-login")
    assert login.startswith("#!/bin/bash\n") and "set -o pipefail\n" in login
    assert login.rstrip().endswith("2>&1 | systemd-cat -t restdemo-ecr-login")
    assert "bash -c" not in file("worker", "/etc/systemd/system/restdemo-agent.service")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, code in (("aws", 0), ("docker", 1), ("systemd-cat", 0)):
        (bin_dir / tool).write_text(f"#!/bin/sh\ncat >/dev/null; exit {code}\n")
        (bin_dir / tool).chmod(0o755)
    script = tmp_path / "login"
    script.write_text(login)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    assert subprocess.run(["bash", str(script)], env=env).returncode == 1  # docker login failed
    (bin_dir / "docker").write_text("#!/bin/sh\ncat >/dev/null; exit 0\n")
    assert subprocess.run(["bash", str(script)], env=env).returncode == 0


def test_no_secret_and_under_the_user_data_limit():
    for role in ("manager", "worker"):
        text = render(node(role))
        assert len(text.encode()) < USER_DATA_LIMIT
        assert "BEGIN " not in text and "PRIVATE KEY" not in text
        # ECR's password only ever travels from the CLI to docker login over a pipe.
        assert (
            text.count("password")
            == text.count("get-login-password --region eu-west-1 | docker login --username AWS --password-stdin") * 2
        )


def test_cloud_init_schema_accepts_both(tmp_path):
    tool = require_tool("cloud-init", "apt-get install cloud-init")
    for role in ("manager", "worker"):
        path = tmp_path / f"{role}.yaml"
        path.write_text(render(node(role)))
        result = subprocess.run(
            [tool, "schema", "--config-file", str(path)],
            capture_output=True,
            text=True,
            env={**os.environ, "LANG": "C.UTF-8"},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Valid" in result.stdout


def test_no_node_labels_its_own_engine():
    """Identity is the leader's to set, from AWS (agent plan.identities): an engine label is whatever
    root on that node writes, so the nodes write none and nothing reads them."""
    for role in ("manager", "worker"):
        assert "labels" not in json.loads(file(role, "/etc/docker/daemon.json"))
        assert "169.254.169.254" not in file(role, "/usr/local/sbin/restdemo-node-setup")


def real_certificate(directory, name: str) -> str:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"]
        + ["-subj", f"/CN={name}", "-keyout", str(directory / f"{name}.key"), "-out", str(directory / f"{name}.crt")],
        check=True,
        capture_output=True,
    )
    return (directory / f"{name}.crt").read_text()


def test_a_manager_accepts_only_the_certificates_its_launch_template_names(tmp_path):
    """The setup script's check, run for real with openssl: the files as `aws ssm get-parameter
    --output text` writes them (a newline added) pass when they hold the named certificates, every
    one of the CA bundle in order, and a stale certificate (the one before a renewal) or a bundle
    missing a CA fails setup, which then retries."""
    from infra.admin.endpoint import pem_sha256

    ca, next_ca, cert, old = (real_certificate(tmp_path, n) for n in ("ca", "ca-b", "server", "old-server"))
    config = replace(node("manager"), tls_sha256={"ca": pem_sha256(ca + next_ca), "cert": pem_sha256(cert)})
    script = render_setup(config).splitlines()
    lines = [x for x in script if x.startswith("pem_sha256() ") or x.startswith('test "$(pem_sha256')]
    assert len(lines) == 3
    check = "\n".join(lines).replace("/etc/docker/tls", str(tmp_path))
    (tmp_path / "ca.pem").write_text(ca + next_ca + "\n")
    (tmp_path / "cert.pem").write_text(cert + "\n")
    assert subprocess.run(["bash", "-euc", check]).returncode == 0
    assert sorted(p.name for p in tmp_path.glob("*.part-*")) == []  # no leftovers
    (tmp_path / "ca.pem").write_text(ca + "\n")
    assert subprocess.run(["bash", "-euc", check]).returncode != 0
    (tmp_path / "ca.pem").write_text(ca + next_ca + "\n")
    (tmp_path / "cert.pem").write_text(old + "\n")
    assert subprocess.run(["bash", "-euc", check]).returncode != 0


def test_workers_check_no_certificate():
    assert "openssl" not in file("worker", "/usr/local/sbin/restdemo-node-setup")


def test_the_setup_counts_its_runs_first_and_its_successes_last(tmp_path):
    """A failed setup is the difference, which the agent reports (NodeSetupFailures); the lines
    are the script's own, run here by bash."""
    from infra.swarm.cloud_init import count_setup

    script = file("worker", "/usr/local/sbin/restdemo-node-setup").splitlines()
    runs, successes = count_setup("setup-runs"), count_setup("setup-successes")
    assert script[script.index("set -euo pipefail") + 2 : script.index("set -euo pipefail") + 4] == runs
    assert script[-2:] == successes
    assert "-v /var/lib/restdemo:/var/lib/restdemo " in file("worker", "/etc/systemd/system/restdemo-agent.service")
    for _ in range(3):
        subprocess.run(
            ["bash", "-euo", "pipefail", "-c", "\n".join(count_setup("setup-runs", str(tmp_path)))], check=True
        )
    assert (tmp_path / "setup-runs").read_text() == "3\n"


def test_the_engine_watchdog_runs_on_a_timer_outside_docker(tmp_path):
    """The agent dies with its engine; the watchdog is a systemd timer on the host, which systemd's
    own verifier accepts, every 20 s from a minute after boot. The node replaces itself by powering
    off, when the watchdog runs restdemo-replace-me or the agent writes its request file (a path unit)."""
    for role in ("manager", "worker"):
        timer = file(role, "/etc/systemd/system/restdemo-engine-watchdog.timer")
        service = file(role, "/etc/systemd/system/restdemo-engine-watchdog.service")
        assert "OnBootSec=60\nOnUnitActiveSec=20\n" in timer and "WantedBy=timers.target" in timer
        assert "ExecStart=/usr/local/sbin/restdemo-engine-watchdog" in service and "docker run" not in service
        assert "TimeoutStartSec=90" in service  # a hung look does not stop the timer
        script = file(role, "/usr/local/sbin/restdemo-engine-watchdog")
        assert "dead_after=180\n" in script and "--unix-socket" in script
        assert "PathExists=/var/lib/restdemo/replace-me" in file(role, "/etc/systemd/system/restdemo-replace-me.path")
        replace_me = file(role, "/usr/local/sbin/restdemo-replace-me")
        assert "systemctl poweroff --force" in replace_me and "aws " not in replace_me
        # Its count lives in /run, a tmpfs: a boot starts it afresh.
        assert "answered=${RESTDEMO_WATCHDOG_STATE:-/run/restdemo/engine-answered}  # in /run" in script
    tool = require_tool("systemd-analyze", "apt-get install systemd")
    units = tmp_path / "units"
    units.mkdir()
    script = tmp_path / "restdemo-engine-watchdog"
    script.write_text(file("worker", "/usr/local/sbin/restdemo-engine-watchdog"))
    script.chmod(0o755)
    replace_me = tmp_path / "restdemo-replace-me"
    replace_me.write_text(file("worker", "/usr/local/sbin/restdemo-replace-me"))
    replace_me.chmod(0o755)
    for unit in (
        "restdemo-engine-watchdog.timer",
        "restdemo-engine-watchdog.service",
        "restdemo-replace-me.path",
        "restdemo-replace-me.service",
    ):
        text = file("worker", f"/etc/systemd/system/{unit}")
        text = text.replace("/usr/local/sbin/restdemo-engine-watchdog", str(script))
        text = text.replace("/usr/local/sbin/restdemo-replace-me", str(replace_me))
        (units / unit).write_text(text)
    result = subprocess.run(
        [tool, "verify", *(str(u) for u in sorted(units.iterdir()))], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_a_managers_watchdog_waits_its_turn_and_the_guide_counts_the_units():
    """Managers are replaced one at a time (the replacement lease, tested in the lab); a worker's
    watchdog neither reads the group nor writes the table. docs/operations.md lists each unit."""
    from infra.swarm.cloud_init import NODE_UNITS
    from tests.support.pulumi_program import REPO

    manager = file("manager", "/usr/local/sbin/restdemo-engine-watchdog")
    worker = file("worker", "/usr/local/sbin/restdemo-engine-watchdog")
    assert "group=restdemo-dev-managers\ntable=restdemo-dev-state\n" in manager
    assert manager.index("dynamodb put-item") < manager.index("restdemo-replace-me")
    assert "dynamodb" not in worker and "describe-auto-scaling-groups" not in worker
    guide = (REPO / "docs" / "operations.md").read_text()
    count = ["no", "one", "two", "three", "four", "five"][len(NODE_UNITS)]
    assert f"installs and enables {count} systemd units" in guide
    section = guide[guide.index("### What runs on each node") : guide.index("The agent writes one JSON line")]
    assert [unit for unit in NODE_UNITS if f"- `{unit}`" not in section] == []
