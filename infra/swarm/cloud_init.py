"""Cloud-init for swarm nodes, rendered by a pure function (tested without AWS).

What a node does: install Docker, point its logs (containers' and the daemon's own) at
the stack's CloudWatch log group, on managers fetch the Docker API's TLS material from
SSM and listen on 2376 with mutual TLS, then run the node agent. Setup and agent are
systemd units, so they run at every boot and retry until they succeed (the agent's
`run` bootstraps first). The user data holds names and addresses only: every secret
(TLS key, ECR password, join tokens) is fetched at boot with the instance role.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

import yaml

from restdemo_agent.contract import (
    DOCKER_ROOT,
    DOCKER_TLS_PORT,
    NODE_STATE_DIR,
    REPLACE_REQUEST,
    REPLACEMENT_LEASE_KEY,
    SETUP_RUNS,
    SETUP_SUCCESSES,
    AgentEnvironment,
)

USER_DATA_LIMIT = 16 * 1024
AGENT_CONTAINER = "restdemo-agent"
# The journals shipped to the log group besides the containers' logs (`journalctl` ORs them with +).
JOURNALED_UNITS = (
    "docker.service",
    "cloud-final.service",
    "restdemo-node-setup.service",
    "restdemo-engine-watchdog.service",
)
ECR_LOGIN_TAG = "restdemo-ecr-login"
NODE_UNITS = (
    "restdemo-node-setup.service",
    "restdemo-agent.service",
    "restdemo-daemon-logs.service",
    "restdemo-engine-watchdog.timer",
    "restdemo-replace-me.path",
)
WATCHDOG_EVERY_SECONDS = 20
# Containers' output waits in a buffer this large when CloudWatch Logs is slow, instead of blocking
# their writes (Docker's default `blocking` mode); what overflows it is dropped.
LOG_BUFFER = "4m"
TLS_DIR = "/etc/docker/tls"


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs to know: what its agent is told (the contract's AgentEnvironment, as
    declared there) and what only the node's own setup uses."""

    agent: AgentEnvironment  # its `image` is the agent's, which the node runs
    log_group: str  # the role's group: its containers' and its journals' lines (Infrequent Access)
    # SHA-256 of the DER of each certificate the manager must find in the CA bundle and the server
    # certificate ("ca", "cert"), comma-separated in the files' order (endpoint.pem_sha256).
    tls_sha256: dict[str, str] = field(default_factory=dict)
    engine_dead_after_seconds: int = 180  # the watchdog's bound on a silent dockerd (engineDeadAfter)


def daemon_config(node: NodeConfig) -> dict:
    config = {
        "log-driver": "awslogs",
        "log-opts": {
            "awslogs-region": node.agent.region,
            "awslogs-group": node.log_group,
            "tag": "{{.Name}}/{{.ID}}",
            # A slow CloudWatch Logs or NAT must not stall the service writing to stdout.
            "mode": "non-blocking",
            "max-buffer-size": LOG_BUFFER,
        },
        "live-restore": False,  # not supported in swarm mode
    }
    if node.agent.role == "manager":
        config |= {
            "hosts": ["unix:///var/run/docker.sock", f"tcp://0.0.0.0:{DOCKER_TLS_PORT}"],
            "tlsverify": True,
            "tlscacert": f"{TLS_DIR}/ca.pem",
            "tlscert": f"{TLS_DIR}/cert.pem",
            "tlskey": f"{TLS_DIR}/key.pem",
        }
    return config


def count_setup(counter: str, directory: str = NODE_STATE_DIR) -> list[str]:
    """Shell lines adding one to a counter file of the node (the agent reports failed setups)."""
    path = f"{directory}/{counter}"
    return [f"install -d -m 755 {directory}", f"echo $(( $(cat {path} 2>/dev/null || echo 0) + 1 )) > {path}"]


def setup_script(node: NodeConfig) -> str:
    q = shlex.quote
    lines = [
        "#!/bin/bash",
        "# restdemo node setup (rendered by infra/swarm/cloud_init.py); restdemo-node-setup.service runs it",
        "# at every boot until it succeeds.",
        "set -euo pipefail",
        f"export AWS_REGION={q(node.agent.region)}",
        *count_setup(SETUP_RUNS),
    ]
    if tls_parameters := node.agent.tls_parameters():
        lines += [f"install -d -m 700 {TLS_DIR}"]
        for name, file in (("ca", "ca.pem"), ("cert", "cert.pem"), ("key", "key.pem")):
            lines.append(
                f"aws ssm get-parameter --with-decryption --name {q(tls_parameters[name])} "
                f"--query Parameter.Value --output text > {TLS_DIR}/{file}"
            )
        lines.append(f"chmod 600 {TLS_DIR}/key.pem")
        # Only the certificates this launch template names: a stale read (or an old template) fails
        # setup, which retries, rather than serving a certificate about to expire.
        # Each file's certificates, in order (the CA file is the trust bundle: two CAs, for rotation).
        lines.append(
            'pem_sha256() { rm -f "$1".part-*; awk -v out="$1.part-" \'/^-----BEGIN/ {n++} n {print > (out n)}\' '
            '"$1"; for part in "$1".part-*; do openssl x509 -in "$part" -outform DER | sha256sum | cut -d" " -f1; '
            'done | paste -sd, -; rm -f "$1".part-*; }'
        )
        for name, digest in sorted(node.tls_sha256.items()):
            lines.append(f'test "$(pem_sha256 {TLS_DIR}/{name}.pem)" = {q(digest)}')
    lines += ["systemctl enable --now docker", *count_setup(SETUP_SUCCESSES)]
    return "\n".join(lines) + "\n"


def setup_unit() -> str:
    """The node's setup, until it succeeds (IMDS, SSM or the package mirror may not answer at boot)."""
    return (
        "[Unit]\nDescription=restdemo node setup: Docker API TLS, the engine\n"
        "After=network-online.target\nWants=network-online.target\nBefore=restdemo-agent.service\n\n"
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/local/sbin/restdemo-node-setup\n"
        "Restart=on-failure\nRestartSec=15\n\n[Install]\nWantedBy=multi-user.target\n"
    )


ECR_LOGIN = "/usr/local/sbin/restdemo-ecr-login"
SHIP_JOURNAL = "/usr/local/sbin/restdemo-ship-journal"


def ecr_login_script(node: NodeConfig) -> str:
    """The node's docker login to the stack's registry (its own role), its output in the journal under
    its own name; pipefail keeps a failed login failing the agent's start. A script file: no value
    is quoted inside another command's quotes."""
    q = shlex.quote
    return (
        "#!/bin/bash\n# restdemo: log the node's docker in to the stack's registry (infra/swarm/cloud_init.py)\n"
        "set -o pipefail\n"
        f"aws ecr get-login-password --region {q(node.agent.region)} | docker login --username AWS --password-stdin "
        f"{q(node.agent.registry)} 2>&1 | systemd-cat -t {ECR_LOGIN_TAG}\n"
    )


def agent_unit(node: NodeConfig) -> str:
    """The node agent on every boot, restarted whenever it stops: `run` bootstraps (retrying) first,
    so a failed bootstrap is never permanent. Logging in to ECR is part of each start."""
    q = shlex.quote
    return (
        "[Unit]\nDescription=restdemo node agent\n"
        "After=docker.service restdemo-node-setup.service\nRequires=docker.service restdemo-node-setup.service\n\n"
        "[Service]\n"
        f"ExecStartPre=-/usr/bin/docker rm -f {AGENT_CONTAINER}\n"
        f"ExecStartPre={ECR_LOGIN}\n"
        f"ExecStart=/usr/bin/docker run --rm --name {AGENT_CONTAINER} --network host "
        # The managers' agents log to the swarm's group, the one the swarm's metrics are extracted from.
        + (f"--log-opt awslogs-group={q(node.agent.log_group)} " if node.agent.log_group != node.log_group else "")
        + "-v /var/run/docker.sock:/var/run/docker.sock "
        # Read-only, for the disk use of the data root it reports (restdemo_agent.metrics).
        f"-v {DOCKER_ROOT}:{DOCKER_ROOT}:ro -v {NODE_STATE_DIR}:{NODE_STATE_DIR} "
        f"--env-file /etc/restdemo/agent.env {q(node.agent.image)} run\n"
        f"ExecStop=/usr/bin/docker stop {AGENT_CONTAINER}\n"
        "Restart=always\nRestartSec=10\n\n[Install]\nWantedBy=multi-user.target\n"
    )


def ship_journal_script(node: NodeConfig) -> str:
    """The node's own logs: dockerd's, cloud-init's, the node setup's and every ECR login's journal
    lines, shipped through Docker's awslogs driver by a `cat` in the agent image. Not the agent's:
    its container logs through awslogs itself (shipped twice, its metrics would count twice)."""
    q = shlex.quote
    # Each unit's own lines and systemd's about it (UNIT=: "docker.service: Failed ..."), and the ECR
    # logins'; from where the last run stopped (the cursor), else the whole boot.
    matches = [
        *(f"_SYSTEMD_UNIT={unit} + UNIT={unit}" for unit in JOURNALED_UNITS),
        f"SYSLOG_IDENTIFIER={ECR_LOGIN_TAG}",
    ]
    journals = f"-b --cursor-file={NODE_STATE_DIR}/journal.cursor " + " + ".join(matches)
    return (
        "#!/bin/bash\n# restdemo: ship the node's journals to the stack's log group (infra/swarm/cloud_init.py)\n"
        "set -o pipefail\n"
        f"journalctl -f -o short-iso {journals} | docker run -i --rm --name restdemo-daemon-logs "
        f"--log-driver awslogs --log-opt awslogs-region={q(node.agent.region)} "
        f"--log-opt awslogs-group={q(node.log_group)} "
        f"--log-opt tag=node/{{{{.ID}}}} --entrypoint cat {q(node.agent.image)}\n"
    )


def daemon_logs_unit() -> str:
    return (
        "[Unit]\nDescription=Ship the node's journals (dockerd, cloud-init, setup, ECR login) to CloudWatch\n"
        "After=docker.service\nRequires=docker.service\n\n"
        f"[Service]\nExecStart={SHIP_JOURNAL}\n"
        "Restart=always\nRestartSec=10\n\n[Install]\nWantedBy=multi-user.target\n"
    )


WATCHDOG_SCRIPT = """#!/bin/bash
# restdemo engine watchdog (rendered by infra/swarm/cloud_init.py); restdemo-engine-watchdog.timer
# runs it every {every} s. Outside Docker, so it outlives a dead engine.
set -uo pipefail
region={region}  # on each AWS call: the AWS CLI v1 reads AWS_DEFAULT_REGION only
dead_after={dead_after}
socket=${{RESTDEMO_DOCKER_SOCKET:-/var/run/docker.sock}}
answered=${{RESTDEMO_WATCHDOG_STATE:-/run/restdemo/engine-answered}}  # in /run: a boot starts afresh
restarted="$answered.restarted"
pause=${{RESTDEMO_WATCHDOG_PAUSE:-/etc/restdemo/watchdog.pause}}  # an operator stopping docker on purpose
mkdir -p "$(dirname "$answered")"
if curl -sf --max-time 10 --unix-socket "$socket" http://docker/_ping >/dev/null; then
  touch "$answered"; rm -f "$restarted"; exit 0
fi
if [ -e "$pause" ]; then echo "engine-silent: paused by $pause"; exit 0; fi
[ -e "$answered" ] || touch "$answered"  # silent since the first look
silent=$(( $(date +%s) - $(stat -c %Y "$answered") ))
if [ "$silent" -ge $(( dead_after / 2 )) ] && [ ! -e "$restarted" ]; then
  touch "$restarted"  # once per silence: a hung dockerd may come back from a restart
  echo "engine-restart seconds=$silent"
  timeout 60 ${{RESTDEMO_ENGINE_RESTART:-systemctl restart docker}}
  exit 0
fi
if [ "$silent" -lt "$dead_after" ]; then echo "engine-silent seconds=$silent"; exit 0; fi
aws_call() {{ aws "$@" --region "$region" --cli-connect-timeout 5 --cli-read-timeout 10; }}
instance=${{RESTDEMO_INSTANCE_ID:-}}
if [ -z "$instance" ]; then
  token=$(curl -sf --max-time 2 -X PUT http://169.254.169.254/latest/api/token \\
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
  instance=$(curl -sf --max-time 2 -H "X-aws-ec2-metadata-token: $token" \\
    http://169.254.169.254/latest/meta-data/instance-id) || exit 1
fi
state=$(aws_call autoscaling describe-auto-scaling-instances --instance-ids "$instance" \\
  --query 'AutoScalingInstances[0].LifecycleState' --output text) || exit 1
if [ "$state" != InService ]; then
  echo "engine-dead seconds=$silent lifecycle=$state: not in service, left alone"; exit 0
fi
{replacement_gate}echo "engine-dead seconds=$silent: replacing $instance"
exec {replace_me} "the engine watchdog: dockerd silent $silent s"
"""


# Managers are replaced one at a time: Auto Scaling replaces unhealthy instances with no regard for
# the raft, and a hang common to several engines would otherwise take most managers at once.
MANAGER_REPLACEMENT_GATE = """# One manager at a time: every other manager of the group in service and healthy, the
# group at its desired size (a replacement has joined: it is in service only then), and the state
# table's lease taken with a conditional put. A lease is free when unheld, when its holder left the group, or when
# its holder is still a healthy member {lease_bound} s on (its engine came back, or it never got marked).
group={group}
table={table}
rows=$(aws_call autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$group" \\
  --query 'AutoScalingGroups[0].Instances[].[InstanceId,LifecycleState,HealthStatus]' --output text) || exit 1
desired=$(aws_call autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$group" \\
  --query 'AutoScalingGroups[0].DesiredCapacity' --output text) || exit 1
leaving=$(awk -v me="$instance" '$1 != me && ($2 != "InService" || $3 != "Healthy") {{print $1 "/" $2 "/" $3}}' \\
  <<<"$rows")
if [ -n "$leaving" ]; then
  echo "engine-dead seconds=$silent: waiting, another manager is being replaced: $(echo $leaving)"; exit 0
fi
if [ "$(grep -c . <<<"$rows")" -lt "$desired" ]; then
  echo "engine-dead seconds=$silent: waiting, the group has fewer managers than its $desired (one is launching)"; exit 0
fi
lease=$(aws_call dynamodb get-item --table-name "$table" --consistent-read --key '{{"pk":{{"S":"{lease_key}"}}}}' \\
  --query '[Item.instance_id.S,Item.since.N]' --output text) || exit 1
read -r holder since <<<"$lease"
now=$(date +%s)
if [ "$holder" != None ] && [ "$holder" != "$instance" ] \\
  && awk -v h="$holder" '$1 == h {{f=1}} END {{exit !f}}' <<<"$rows" \\
  && [ $(( now - ${{since%.*}} )) -lt {lease_bound} ]; then
  echo "engine-dead seconds=$silent: waiting, manager $holder holds the replacement lease"; exit 0
fi
seen=$holder; [ "$seen" != None ] || seen=$instance
if ! refused=$(aws_call dynamodb put-item --table-name "$table" \\
  --item '{{"pk":{{"S":"{lease_key}"}},"instance_id":{{"S":"'"$instance"'"}},"since":{{"N":"'"$now"'"}}}}' \\
  --condition-expression 'attribute_not_exists(pk) OR instance_id = :seen' \\
  --expression-attribute-values '{{":seen":{{"S":"'"$seen"'"}}}}' 2>&1 >/dev/null); then
  case $refused in
    *ConditionalCheckFailed*)
      echo "engine-dead seconds=$silent: waiting, another manager took the replacement lease"; exit 0 ;;
    *) echo "engine-dead seconds=$silent: the replacement lease not written: $(tail -1 <<<"$refused")"; exit 1 ;;
  esac
fi
"""
# A lease held this long by a member still in service and healthy is stale: marking takes seconds.
REPLACEMENT_LEASE_SECONDS = 600


def watchdog_script(node: NodeConfig) -> str:
    """Outside Docker, so it outlives a dead engine (the agent runs in a container of that engine):
    once dockerd has been silent for half of `engine_dead_after_seconds` it is restarted, once; at
    the whole bound the instance is marked unhealthy and its group replaces it; never while the
    instance is not in service (launching, leaving), nor while /etc/restdemo/watchdog.pause exists.
    RESTDEMO_DOCKER_SOCKET, RESTDEMO_WATCHDOG_STATE, RESTDEMO_WATCHDOG_PAUSE, RESTDEMO_ENGINE_RESTART
    and RESTDEMO_INSTANCE_ID override the node's own (the lab runs it against its engines)."""
    gate = ""
    if node.agent.role == "manager":
        gate = MANAGER_REPLACEMENT_GATE.format(
            group=shlex.quote(node.agent.group_name),
            table=shlex.quote(node.agent.state_table),
            lease_key=REPLACEMENT_LEASE_KEY,
            lease_bound=REPLACEMENT_LEASE_SECONDS,
        )
    return WATCHDOG_SCRIPT.format(
        every=WATCHDOG_EVERY_SECONDS,
        region=shlex.quote(node.agent.region),
        dead_after=node.engine_dead_after_seconds,
        replacement_gate=gate,
        replace_me="${RESTDEMO_REPLACE_ME:-" + REPLACE_ME + "}",
    )


# A node replaces itself by powering off: EC2 Auto Scaling treats an instance in any state but
# `running` as unhealthy at once and replaces it ("Health checks for instances in an Auto Scaling
# group"). No node needs SetInstanceHealth, which IAM cannot limit to the caller's own instance
# (its only resource is the group, its only condition keys the group's tags): a worker holding it
# could have every other worker replaced.
REPLACE_ME = "/usr/local/sbin/restdemo-replace-me"
REPLACE_ME_SCRIPT = """#!/bin/bash
# restdemo: replace this node (rendered by infra/swarm/cloud_init.py). Run by the engine watchdog,
# and by restdemo-replace-me.path when the node agent asks ({request}). Powering off is enough: its
# group replaces an instance that is not running. No AWS call, so no permission over other nodes.
set -u
reason=${{1:-$(cat {request} 2>/dev/null || echo "asked")}}
echo "replacing this node: $reason"
rm -f {request}  # a node started again by hand is not powered off again for an old request
sync
${{RESTDEMO_POWEROFF:-systemctl poweroff --force}}
"""


def replace_me_units() -> dict[str, str]:
    """The agent runs in a container: it asks the host to replace the node by writing the request
    file into the node's state directory (mounted into its container), which this path unit watches."""
    return {
        "restdemo-replace-me.path": (
            "[Unit]\nDescription=restdemo: replace this node when its agent asks\n\n"
            f"[Path]\nPathExists={NODE_STATE_DIR}/{REPLACE_REQUEST}\n\n[Install]\nWantedBy=multi-user.target\n"
        ),
        "restdemo-replace-me.service": (
            "[Unit]\nDescription=restdemo: power this node off, so that its group replaces it\n\n"
            f"[Service]\nType=oneshot\nExecStart={REPLACE_ME}\n"
        ),
    }


def watchdog_units() -> dict[str, str]:
    """The watchdog's timer (from a minute after boot, every WATCHDOG_EVERY_SECONDS) and service."""
    return {
        "restdemo-engine-watchdog.timer": (
            "[Unit]\nDescription=restdemo engine watchdog, every few seconds\n\n"
            f"[Timer]\nOnBootSec=60\nOnUnitActiveSec={WATCHDOG_EVERY_SECONDS}\nAccuracySec=5\n\n"
            "[Install]\nWantedBy=timers.target\n"
        ),
        "restdemo-engine-watchdog.service": (
            "[Unit]\nDescription=restdemo engine watchdog: the instance replaced when dockerd stops answering\n"
            "After=restdemo-node-setup.service\n\n"
            # A hung look must not stop the timer: the unit's run is bounded.
            "[Service]\nType=oneshot\nTimeoutStartSec=90\nExecStart=/usr/local/sbin/restdemo-engine-watchdog\n"
        ),
    }


def render(node: NodeConfig) -> str:
    """The node's user data: a #cloud-config document."""
    files = [
        {
            "path": "/etc/docker/daemon.json",
            "permissions": "0644",
            "content": json.dumps(daemon_config(node), indent=2),
        },
        {
            "path": "/etc/restdemo/agent.env",
            "permissions": "0644",
            "content": "".join(f"{k}={v}\n" for k, v in node.agent.to_environ().items()),
        },
        {"path": "/usr/local/sbin/restdemo-node-setup", "permissions": "0755", "content": setup_script(node)},
        {"path": "/etc/systemd/system/restdemo-node-setup.service", "permissions": "0644", "content": setup_unit()},
        {"path": "/etc/systemd/system/restdemo-agent.service", "permissions": "0644", "content": agent_unit(node)},
        {"path": "/usr/local/sbin/restdemo-engine-watchdog", "permissions": "0755", "content": watchdog_script(node)},
        *(
            {"path": f"/etc/systemd/system/{unit}", "permissions": "0644", "content": content}
            for unit, content in (watchdog_units() | replace_me_units()).items()
        ),
        {
            "path": REPLACE_ME,
            "permissions": "0755",
            "content": REPLACE_ME_SCRIPT.format(request=f"{NODE_STATE_DIR}/{REPLACE_REQUEST}"),
        },
        {
            "path": "/etc/systemd/system/restdemo-daemon-logs.service",
            "permissions": "0644",
            "content": daemon_logs_unit(),
        },
        {"path": ECR_LOGIN, "permissions": "0755", "content": ecr_login_script(node)},
        {"path": SHIP_JOURNAL, "permissions": "0755", "content": ship_journal_script(node)},
    ]
    if node.agent.role == "manager":
        # Amazon Linux's unit passes -H fd://, which conflicts with "hosts" in daemon.json.
        files.append(
            {
                "path": "/etc/systemd/system/docker.service.d/restdemo-hosts.conf",
                "permissions": "0644",
                "content": (
                    "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock\n"
                ),
            }
        )
    document = {
        "package_update": False,
        "packages": ["docker"],
        "write_files": files,
        # Units, not a once-per-instance command: they run again on every boot and retry.
        "runcmd": [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "--no-block", *NODE_UNITS],
        ],
    }
    user_data = "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=1000)
    if len(user_data.encode()) > USER_DATA_LIMIT:
        raise ValueError(f"user data is {len(user_data.encode())} bytes; EC2 allows {USER_DATA_LIMIT}")
    return user_data
