#!/usr/bin/env bash
# The main command's wrapper around the Pulumi CLI: `make up|preview|down|status`.
#
#   STACK=local (default) | dev | staging | prod | any stacks/Pulumi.<stack>.yaml
#
# A stack is local or AWS by its restdemo:platform (Pulumi.yaml's default: local), not its
# name. A local one keeps Pulumi's state in .pulumi/ inside the repo (ignored by git) and
# puts the engine in swarm mode when it is not (saying so). Passphrase rule:
# PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE when set; otherwise a
# random passphrase generated once into .pulumi/passphrase (mode 600, never committed).
# The local stack holds no secret, but Pulumi still asks for one.
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:?usage: stack.sh up|preview|down|status}
stack=${STACK:-local}
case $action in
  up | preview) pulumi_command=$action ;;
  down) pulumi_command=destroy ;;
  status) pulumi_command="stack output" ;;
  *) echo "usage: stack.sh up|preview|down|status" >&2; exit 2 ;;
esac

# Only the stacks this repository defines: a misspelt name must not become a new stack.
stacks=()
for file in stacks/Pulumi.*.yaml; do
  name=${file#stacks/Pulumi.}
  stacks+=("${name%.yaml}")
done
if [ ! -f "stacks/Pulumi.$stack.yaml" ]; then
  echo "restdemo: no stack '$stack'; the stacks are: ${stacks[*]} (stacks/Pulumi.<stack>.yaml)" >&2
  exit 2
fi

# A setting of the stack file's config (its first line, quotes and a trailing comment dropped), in
# bash alone: it runs before the tools are checked. Any indentation, the key quoted or not.
stack_setting() {
  local line value pattern="^[[:space:]]+[\"']?$1[\"']?:[[:space:]]*(.*)$"
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ $pattern ]]; then
      value=${BASH_REMATCH[1]%%[[:space:]]#*}
      value=${value%"${value##*[![:space:]]}"}
      echo "${value//[\"\']/}"
      return
    fi
  done <"stacks/Pulumi.$stack.yaml"
}
platform=$(stack_setting restdemo:platform)
# A platform misread would put an AWS stack's state in .pulumi/ and deploy it on this machine: a
# line this cannot read stops it (make check reads the file as YAML and says what is wrong).
# Once only: YAML would take one of two, and not necessarily the first.
count=0
while IFS= read -r line || [ -n "$line" ]; do
  if [[ $line == *restdemo:platform* ]]; then count=$((count + 1)); fi
done <"stacks/Pulumi.$stack.yaml"
if [ "$count" -gt 1 ] || { [ -z "$platform" ] && [ "$count" -gt 0 ]; } || [[ ! ${platform:-local} =~ ^(local|aws)$ ]]; then
  echo "restdemo: cannot read restdemo:platform in stacks/Pulumi.$stack.yaml: write it as '  restdemo:platform: local' or '  restdemo:platform: aws' under config:" >&2
  exit 2
fi
platform=${platform:-local}

missing=()
tools=${RESTDEMO_TOOLS_DIR:-$PWD/.tools}
if ! command -v pulumi >/dev/null 2>&1 && [ -x "$tools/bin/pulumi" ]; then
  export PATH="$tools/bin:$PATH"  # installed by an earlier run
fi
if ! command -v pulumi >/dev/null 2>&1; then
  # None on PATH: the pinned release into .tools/, its checksum checked (scripts/pulumi_cli.py), as
  # the Makefile installs a pinned uv.
  if ! command -v "${PYTHON:-python3}" >/dev/null 2>&1; then
    missing+=("the Pulumi CLI: https://www.pulumi.com/docs/install/ (make up installs a pinned one with Python 3, not on PATH either)")
  elif cli_said=$("${PYTHON:-python3}" scripts/pulumi_cli.py "$tools" 2>&1); then
    echo "$cli_said"
    export PATH="$tools/bin:$PATH"
  else
    missing+=("the Pulumi CLI: ${cli_said#restdemo: the Pulumi CLI: }; or install it yourself: https://www.pulumi.com/docs/install/")
  fi
fi
if ! command -v docker >/dev/null 2>&1; then
  missing+=("Docker: Docker Desktop, or Docker Engine on Linux (https://docs.docker.com/engine/install/)")
elif [ "$platform" != local ] && [ "$action" = status ]; then
  : # an AWS stack's status needs only the docker CLI: it talks to the stack's swarm
elif ! docker info >/dev/null 2>&1; then
  missing+=("a running Docker engine: docker is installed but its engine does not answer; start Docker Desktop or 'sudo systemctl start docker'")
fi
# An AWS stack also needs its state backend, AWS credentials (one STS call), the AWS CLI and, to
# reach the Docker API through Session Manager (adminAccess session-manager, the default), its plugin.
if [ "$platform" != local ]; then
  if [ -z "${PULUMI_BACKEND_URL:-}" ] && command -v pulumi >/dev/null 2>&1 && ! pulumi whoami >/dev/null 2>&1; then
    missing+=("a Pulumi state backend: set PULUMI_BACKEND_URL (for example s3://<bucket>) or run 'pulumi login'")
  fi
  if ! command -v aws >/dev/null 2>&1; then
    missing+=("the AWS CLI: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html")
  elif ! sts=$(aws sts get-caller-identity --region "$(stack_setting aws:region)" --output text 2>&1 >/dev/null); then
    missing+=("AWS credentials for the account of stack '$stack' (aws sts get-caller-identity: $(echo "$sts" | grep -v '^$' | tail -1))")
  fi
  if [ "$(stack_setting restdemo:adminAccess)" != load-balancer ] && ! command -v session-manager-plugin >/dev/null 2>&1; then
    missing+=("the AWS CLI's Session Manager plugin (adminAccess session-manager): https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "restdemo: cannot run 'pulumi $pulumi_command' on stack '$stack'; install or start:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi

# The environment only once the tools are known to be there (pulumi-aws takes minutes to install).
"${MAKE:-make}" -s venv

if [ "$platform" = local ]; then
  export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$PWD/.pulumi}
  mkdir -p .pulumi
  if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
    [ -s .pulumi/passphrase ] || (umask 077 && head -c 32 /dev/urandom | base64 >.pulumi/passphrase)
    export PULUMI_CONFIG_PASSPHRASE_FILE=$PWD/.pulumi/passphrase
  fi
  swarm_state=$(docker info --format '{{.Swarm.LocalNodeState}}')
  if [ "$swarm_state" != active ] && [ "$action" = up ]; then
    echo "restdemo: this Docker engine is not in swarm mode; running 'docker swarm init --advertise-addr 127.0.0.1' (undo: docker swarm leave --force)"
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  fi
fi

if [ "$platform" = local ]; then
  pulumi stack select --create "$stack" --non-interactive >/dev/null  # state is per machine
else
  pulumi stack select "$stack" --non-interactive >/dev/null  # in your backend; never created here
fi

# Through ops/client.py: an AWS stack's Docker API is reached through the stack's outputs,
# and with adminAccess session-manager through a tunnel it opens for the command (ops/tunnel.py).
on_swarm() { .venv/bin/python -m ops.client "$stack" "$@"; }

show_status() {
  if ! url=$(pulumi stack output url --stack "$stack" 2>/dev/null); then
    echo "restdemo: stack '$stack' has no outputs yet (never deployed here): run 'STACK=$stack make up' first" >&2
    exit 1
  fi
  # A stack deployed before healthCheckPath was an output is restdemo's: /health.
  health_path=$(pulumi stack output healthCheckPath --stack "$stack" 2>/dev/null) || health_path=/health
  echo
  echo "restdemo ($stack): $url"
  # A Compose stack's services and images (outputs services, images), or the single service's.
  if services=$(pulumi stack output services --json --stack "$stack" 2>/dev/null); then
    services=$(printf '%s' "$services" | .venv/bin/python -c 'import json, sys; print(*json.load(sys.stdin).values())')
    pulumi stack output images --json --stack "$stack" \
      | .venv/bin/python -c 'import json, sys; [print(f"image of {k}: {v}") for k, v in json.load(sys.stdin).items()]'
  else
    services=$(pulumi stack output serviceName --stack "$stack")
    echo "image: $(pulumi stack output image --stack "$stack")"
  fi
  echo
  # The swarm at a glance: leader, managers, nodes, each service's replicas by version and last update
  # (ops/health.py). Its own one-line error when the swarm does not answer; the rest still follows.
  # shellcheck disable=SC2086 # one word per service
  on_swarm --docker-env -- .venv/bin/python -m ops.health $services || true
  for service in $services; do
    echo
    on_swarm --docker-env -- docker service ps "$service" --filter desired-state=running \
      --format 'table {{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}'
  done
  echo
  scripts/answers.sh "$url" 6 "$health_path"
}

case $action in
  # The program waits for the tunnel itself, once it has made the managers (a first up).
  # --refresh: what runs is read back first, so a service or network gone from the swarm (a swarm
  # formed anew) is created again, and a rolled-back spec is applied again (docs/operations.md).
  # REFRESH=0 skips it: a swarm without a leader cannot be read, and an up mid-incident (a new AMI,
  # more nodes) must still go through.
  up) on_swarm --tunnel-wait 0 -- pulumi up $([ "${REFRESH:-1}" = 0 ] || echo --refresh) --yes --stack "$stack" \
    && show_status ;;
  preview) pulumi preview --diff --stack "$stack" ;;
  # Through ops/teardown.py: stops before anything on deletion protection, empties the
  # stack's ECR repositories first (AWS deletes only empty ones), then says what stays.
  down) on_swarm -- .venv/bin/python -m ops.teardown "$stack" -- pulumi destroy --yes --stack "$stack" ;;
  status) show_status ;;
esac
