"""The AWS stacks' cluster under Pulumi mocks: the exact inputs that keep it safe and highly available."""

from __future__ import annotations

import base64
import importlib
import json

import pytest

from infra.swarm.cloud_init import certificate_sha256
from infra.swarm.iam import SESSION_MANAGER_ACTIONS
from tests.support.pulumi_program import (
    AMI_ID,
    ECR_PASSWORD,
    INVOKES,
    certificate_pem,
    kms_key_arn,
    run_program,
    stack_config,
)

INVOKES_SSM = INVOKES["aws:ssm/getParameter:getParameter"]

pytestmark = pytest.mark.unit

AWS_STACKS = ["dev", "staging", "prod"]
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GROUP = "aws:autoscaling/group:Group"


@pytest.fixture(scope="module", params=AWS_STACKS)
def run(request):
    return run_program(request.param)


def config(run, key):
    return stack_config(run.stack)[f"restdemo:{key}"]


def group(run, role):
    return run.named(GROUP, f"swarm-{role}s-group").inputs


def test_alb_listens_on_80_and_forwards_to_port_8000_checked_on_health(run):
    listener = run.named("aws:lb/listener:Listener", "web-http").inputs
    assert (listener["port"], listener["protocol"]) == (80, "HTTP")
    assert listener["defaultActions"] == [
        {"type": "forward", "targetGroupArn": listener["defaultActions"][0]["targetGroupArn"]}
    ]
    target_group = run.named("aws:lb/targetGroup:TargetGroup", "web").inputs
    assert (target_group["port"], target_group["protocol"], target_group["targetType"]) == (8000, "HTTP", "instance")
    assert target_group["healthCheck"] == {
        "path": "/health",
        "port": "8000",
        "protocol": "HTTP",
        "matcher": "200",
        "interval": 10,
        "timeout": 5,
        "healthyThreshold": 2,
        "unhealthyThreshold": 2,
    }
    assert target_group["deregistrationDelay"] == 60
    balancer = run.named("aws:lb/loadBalancer:LoadBalancer", "web").inputs
    assert balancer["loadBalancerType"] == "application" and balancer["internal"] is False
    assert balancer["enableDeletionProtection"] is (run.stack == "prod")


def test_the_alb_gives_up_an_idle_connection_before_the_app_does(run):
    """AWS: a target's keep-alive timeout must exceed the load balancer's idle timeout, or the
    ALB reuses a connection the target is closing and answers 502."""
    from restdemo.server import IDLE_KEEPALIVE_SECONDS

    balancer = run.named("aws:lb/loadBalancer:LoadBalancer", "web").inputs
    assert balancer["idleTimeout"] < IDLE_KEEPALIVE_SECONDS


def test_a_certificate_adds_443_and_redirects_80():
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0f0e0d0c-0000-4000-8000-000000000000"
    run = run_program("dev", {**stack_config("dev"), "restdemo:certificateArn": arn})
    https = run.named("aws:lb/listener:Listener", "web-https").inputs
    assert (https["port"], https["protocol"], https["certificateArn"]) == (443, "HTTPS", arn)
    assert https["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    http = run.named("aws:lb/listener:Listener", "web-http").inputs
    assert http["defaultActions"] == [
        {"type": "redirect", "redirect": {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"}}
    ]
    opened = sorted(r.inputs["fromPort"] for r in run.of_type(SG_INGRESS) if r.inputs.get("cidrIpv4") == "0.0.0.0/0")
    assert opened == [80, 443]
    assert run.outputs["url"].startswith("https://")


def test_admin_nlb_forwards_2376_and_checks_agent_readiness(run):
    listener = run.named("aws:lb/listener:Listener", "admin").inputs
    assert (listener["port"], listener["protocol"]) == (2376, "TCP")
    target_group = run.named("aws:lb/targetGroup:TargetGroup", "admin").inputs
    assert (target_group["port"], target_group["protocol"]) == (2376, "TCP")
    assert target_group["healthCheck"] == {
        "protocol": "HTTP",
        "port": "44554",
        "path": "/ready",
        "matcher": "200",
        "interval": 10,
        "healthyThreshold": 2,
        "unhealthyThreshold": 2,
    }
    assert run.named("aws:lb/loadBalancer:LoadBalancer", "admin").inputs["loadBalancerType"] == "network"


def test_groups_use_ec2_health_checks_and_managers_wait_for_ready_capacity(run):
    managers, workers = group(run, "manager"), group(run, "worker")
    assert managers["healthCheckType"] == workers["healthCheckType"] == "EC2"
    assert managers["targetGroupArns"] == ["arn:aws:lb:eu-west-1:123456789012:admin"]
    assert managers["waitForElbCapacity"] == config(run, "managerCount")
    assert "waitForElbCapacity" not in workers
    assert workers["targetGroupArns"] == ["arn:aws:lb:eu-west-1:123456789012:web"]


def test_managers_stay_in_the_alb_after_the_next_update(run):
    """Defect: the group's Optional+Computed target_group_arns, set to the admin NLB only, would
    detach the separately attached web target group on the next plan. Now both target groups are
    Attachments and the group ignores its own view of them after creation."""
    managers = run.named(GROUP, "swarm-managers-group")
    assert managers.ignore_changes == ["targetGroupArns"]
    attached = {
        a.inputs["lbTargetGroupArn"]
        for a in run.of_type("aws:autoscaling/attachment:Attachment")
        if a.inputs["autoscalingGroupName"] == managers.inputs["name"]
    }
    assert attached == {"arn:aws:lb:eu-west-1:123456789012:admin", "arn:aws:lb:eu-west-1:123456789012:web"}
    workers = run.named(GROUP, "swarm-workers-group")
    assert workers.ignore_changes == []
    assert not any(
        a.inputs["autoscalingGroupName"] == workers.inputs["name"]
        for a in run.of_type("aws:autoscaling/attachment:Attachment")
    )


def test_group_sizes_and_subnets_span_the_zones(run):
    managers, workers = group(run, "manager"), group(run, "worker")
    assert managers["minSize"] == managers["maxSize"] == managers["desiredCapacity"] == config(run, "managerCount")
    assert workers["minSize"] == workers["maxSize"] == workers["desiredCapacity"] == config(run, "workerCount")
    private = "restdemo:privateSubnetCidrs" in stack_config(run.stack)
    kind = "private" if private else "public"
    subnets = {
        f"network-{kind}-{i}-id": run.named("aws:ec2/subnet:Subnet", f"network-{kind}-{i}").inputs
        for i in range(len(config(run, "publicSubnetCidrs")))
    }
    for node_group in (managers, workers):
        assert node_group["vpcZoneIdentifiers"] == list(subnets)
    zones = {s["availabilityZone"] for s in subnets.values()}
    assert len(zones) == (3 if run.stack in ("prod", "staging") else 2)
    for subnet in subnets.values():
        assert subnet["mapPublicIpOnLaunch"] is (not private)


def test_prod_nodes_are_private_behind_one_nat_per_zone():
    run = run_program("prod")
    assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == 3
    for index in range(3):
        routes = run.named("aws:ec2/routeTable:RouteTable", f"network-private-{index}").inputs["routes"]
        assert routes == [{"cidrBlock": "0.0.0.0/0", "natGatewayId": f"network-nat-{index}-id"}]


@pytest.mark.parametrize("role,size_key", [("manager", "managerCount"), ("worker", "workerCount")])
def test_instance_refresh_launches_before_it_terminates(run, role, size_key):
    refresh = group(run, role)["instanceRefresh"]
    size = config(run, size_key)
    assert refresh["strategy"] == "Rolling"
    assert refresh["preferences"]["minHealthyPercentage"] == 100
    assert refresh["preferences"]["maxHealthyPercentage"] == min(200, 100 + -(-100 // max(size, 1)))
    assert refresh["preferences"]["maxHealthyPercentage"] > 100


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_termination_lifecycle_hook_sends_to_the_one_queue(run, role):
    (initial,) = group(run, role)["initialLifecycleHooks"]
    hook = run.named("aws:autoscaling/lifecycleHook:LifecycleHook", f"swarm-{role}s-drain").inputs
    assert hook["autoscalingGroupName"] == group(run, role)["name"]
    # The same hook: present from the first launch, then kept current by its own resource.
    assert {k: v for k, v in initial.items() if k != "heartbeatTimeout"} == {
        k: v for k, v in hook.items() if k not in ("heartbeatTimeout", "autoscalingGroupName")
    }
    assert hook["name"] == "drain"
    assert hook["lifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert (initial["heartbeatTimeout"], hook["heartbeatTimeout"]) == (3600, 600)
    assert hook["defaultResult"] == "CONTINUE"
    assert hook["notificationTargetArn"] == f"arn:aws:sqs:eu-west-1:123456789012:restdemo-{run.stack}-lifecycle"
    assert hook["roleArn"] == "arn:aws:iam::123456789012:role/swarm-state-lifecycle-hook"
    assert json.loads(hook["notificationMetadata"]) == {"role": role, "stack": run.stack}


def without_drain_timeout(run) -> dict:
    return {r.name: r.inputs for r in run.of_type(GROUP)}


def test_a_new_drain_timeout_changes_no_auto_scaling_group_input():
    """Defect: initial_lifecycle_hooks is ForceNew on a named group (delete-first: every node gone)."""
    before = run_program("prod")
    after = run_program("prod", {**stack_config("prod"), "restdemo:drainTimeout": "25m"})
    assert without_drain_timeout(after) == without_drain_timeout(before)
    hooks = {r.name: r.inputs["heartbeatTimeout"] for r in after.of_type("aws:autoscaling/lifecycleHook:LifecycleHook")}
    assert hooks == {
        "swarm-managers-drain": 1500,
        "swarm-workers-drain": 1500,
        "swarm-managers-joined": 1200,
        "swarm-workers-joined": 1200,
    }


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_launch_templates_require_imdsv2_encrypt_disks_and_have_no_key_pair(run, role):
    template = run.named("aws:ec2/launchTemplate:LaunchTemplate", f"swarm-{role}s-template").inputs
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (disk,) = template["blockDeviceMappings"]
    assert disk["ebs"]["encrypted"] == "true" and disk["ebs"]["volumeType"] == "gp3"
    assert "keyName" not in template
    assert template["imageId"] == AMI_ID
    (call,) = [args for token, args in run.calls if token == "aws:ec2/getAmi:getAmi"]
    assert call["owners"] == ["amazon"]
    assert call["filters"] == [{"name": "name", "values": [config(run, "nodeAmi")]}]


def test_a_new_latest_ami_rolls_no_node(monkeypatch):
    """Defect: the AMI came from SSM's `latest` parameter, so an Amazon release replaced every node."""
    before = run_program("dev")
    monkeypatch.setitem(
        INVOKES,
        "aws:ssm/getParameter:getParameter",
        lambda region: {**INVOKES_SSM(region), "value": "ami-0fedcba987654321f"},
    )
    after = run_program("dev")
    templates = lambda run: {r.name: r.inputs for r in run.of_type("aws:ec2/launchTemplate:LaunchTemplate")}  # noqa: E731
    assert templates(after) == templates(before)


def test_an_ami_id_is_used_as_given():
    run = run_program("dev", {**stack_config("dev"), "restdemo:nodeAmi": "ami-0123456789abcdef0"})
    templates = run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert {t.inputs["imageId"] for t in templates} == {"ami-0123456789abcdef0"}
    assert not [token for token, _ in run.calls if token == "aws:ec2/getAmi:getAmi"]


def test_nothing_is_open_to_the_internet_but_the_alb_listeners(run):
    for rule in run.of_type(SG_INGRESS):
        if rule.inputs.get("cidrIpv4") == "0.0.0.0/0" or rule.inputs.get("cidrIpv6") == "::/0":
            assert rule.name.startswith("web-listener-"), rule.name
            assert rule.inputs["fromPort"] in (80, 443)
    assert not any(r.inputs.get("fromPort") == 22 for r in run.of_type(SG_INGRESS))


def test_with_session_manager_access_no_cidr_reaches_the_docker_api(run):
    assert config(run, "adminAccess") == "session-manager"
    assert [r.name for r in run.of_type(SG_INGRESS) if r.inputs.get("fromPort") == 2376] == []
    assert run.one("pulumi:providers:docker").inputs["host"] == "tcp://127.0.0.1:23760"
    assert run.outputs["dockerHost"] == "tcp://127.0.0.1:23760"  # where `make status` sends docker


def test_with_load_balancer_access_2376_only_from_the_admin_cidrs():
    admin = ["198.51.100.0/24"]
    run = run_program(
        "dev", {**stack_config("dev"), "restdemo:adminAccess": "load-balancer", "restdemo:adminCidrs": admin}
    )
    rules = [r.inputs for r in run.of_type(SG_INGRESS) if r.inputs.get("fromPort") == 2376]
    assert rules and all(r["cidrIpv4"] in admin for r in rules)
    assert {r["securityGroupId"] for r in rules} == {"admin-id", "swarm-managers-id"}
    nlb = "tcp://admin-0123456789.eu-west-1.elb.amazonaws.com:2376"
    assert run.one("pulumi:providers:docker").inputs["host"] == run.outputs["dockerHost"] == nlb


def test_an_up_without_the_tunnel_stops_with_a_clear_error(monkeypatch):
    monkeypatch.setattr("infra.admin.tunnel.TUNNEL_WAIT_SECONDS", 0.1)
    monkeypatch.setattr(
        "infra.program.wait_for_tunnel",
        lambda: importlib.import_module("infra.admin.tunnel").wait_for_tunnel(timeout=0.1),
    )
    with pytest.raises(
        Exception, match=r"nothing listens on 127.0.0.1:23760 after 0.1s: adminAccess is session-manager"
    ):
        run_program("dev", tunnel=False)


def test_overlay_encryption_esp_only_between_nodes(run):
    (esp,) = [r for r in run.of_type(SG_INGRESS) if r.inputs["ipProtocol"] == "50"]
    assert esp.inputs["referencedSecurityGroupId"] == esp.inputs["securityGroupId"] == "swarm-nodes-id"
    assert "fromPort" not in esp.inputs and "toPort" not in esp.inputs


def test_swarm_ports_only_between_nodes_and_8000_only_from_the_alb(run):
    rules = {r.name: r.inputs for r in run.of_type(SG_INGRESS)}
    for name in ("swarm-swarm-tcp-7946", "swarm-swarm-udp-7946", "swarm-swarm-udp-4789", "swarm-manager-2377"):
        assert rules[name]["referencedSecurityGroupId"] == "swarm-nodes-id"
    assert rules["swarm-mesh-8000"]["referencedSecurityGroupId"] == "web-id"
    assert rules["swarm-readiness"]["fromPort"] == 44554
    assert rules["swarm-readiness"]["cidrIpv4"] == str(config(run, "vpcCidr"))


def policy_of(run, role):
    return json.loads(run.named("aws:iam/rolePolicy:RolePolicy", f"swarm-{role}s-role").inputs["policy"])


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_node_policies_are_scoped_to_the_stack(run, role):
    unscopable = {
        *SESSION_MANAGER_ACTIONS,
        "logs:DescribeLogGroups",
        "ecr:GetAuthorizationToken",
        "ec2:DescribeInstances",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeLifecycleHooks",
    }
    for statement in policy_of(run, role)["Statement"]:
        if statement["Resource"] == "*":
            assert set(statement["Action"]) <= unscopable, statement
            continue
        for arn in statement["Resource"]:
            # The stack's own resources, and its own KMS key (whose ARN carries a key id, not a name).
            assert run.stack in arn or arn == kms_key_arn("eu-west-1", "secrets", run.stack), arn


def test_workers_cannot_write_state_or_read_manager_tokens(run):
    actions = {a for s in policy_of(run, "worker")["Statement"] for a in s["Action"]}
    assert not {"dynamodb:PutItem", "ssm:PutParameter"} & actions
    resources = [r for s in policy_of(run, "worker")["Statement"] if s["Resource"] != "*" for r in s["Resource"]]
    assert f"arn:aws:ssm:eu-west-1:123456789012:parameter/restdemo/{run.stack}/join-token/worker" in resources
    assert not any("join-token/manager" in r or "join-token/*" in r or "/tls/" in r for r in resources)


def test_managers_can_initialise_the_swarm(run):
    statements = policy_of(run, "manager")["Statement"]
    table = f"arn:aws:dynamodb:eu-west-1:123456789012:table/restdemo-{run.stack}-state"
    assert any("dynamodb:PutItem" in s["Action"] and s["Resource"] == [table] for s in statements)
    tokens = [
        f"arn:aws:ssm:eu-west-1:123456789012:parameter/restdemo/{run.stack}/join-token/{role}"
        for role in ("manager", "worker")
    ]
    assert any("ssm:PutParameter" in s["Action"] and s["Resource"] == tokens for s in statements)


def test_session_manager_instead_of_ssh_logged_to_the_stack(run):
    # No AWS-managed policy on node roles: AmazonSSMManagedInstanceCore reads every parameter.
    assert run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
    document = run.named("aws:ssm/document:Document", "swarm-state-session").inputs
    assert (document["name"], document["documentType"]) == (f"restdemo-{run.stack}-session", "Session")
    inputs = json.loads(document["content"])["inputs"]
    assert (inputs["cloudWatchLogGroupName"], inputs["cloudWatchStreamingEnabled"]) == (f"/restdemo/{run.stack}", True)
    assert run.outputs["managerShell"].startswith(
        f"aws ssm start-session --region eu-west-1 --document-name restdemo-{run.stack}-session --target $("
    )


def test_state_queue_logs_and_tls_parameters(run):
    table = run.named("aws:dynamodb/table:Table", "swarm-state-table").inputs
    assert (table["hashKey"], table["billingMode"]) == ("pk", "PAY_PER_REQUEST")
    assert run.named("aws:sqs/queue:Queue", "swarm-state-lifecycle").inputs["sqsManagedSseEnabled"] is True
    logs = run.named("aws:cloudwatch/logGroup:LogGroup", "swarm-state-logs").inputs
    assert (logs["name"], logs["retentionInDays"]) == (f"/restdemo/{run.stack}", config(run, "logRetentionDays"))
    parameters = {r.inputs["name"]: r for r in run.of_type("aws:ssm/parameter:Parameter")}
    assert sorted(parameters) == [f"/restdemo/{run.stack}/tls/{n}" for n in ("ca", "cert", "key")]
    assert all(p.inputs["type"] == "SecureString" for p in parameters.values())
    # Under the stack's own key, not the account-wide aws/ssm.
    assert {p.inputs["keyId"] for p in parameters.values()} == {
        kms_key_arn("eu-west-1", "secrets", run.stack).rpartition("/")[2]
    }
    assert "value" in parameters[f"/restdemo/{run.stack}/tls/key"].secret_paths


def test_service_provider_is_the_admin_endpoint_with_the_client_certificate(run):
    provider = run.one("pulumi:providers:docker")
    assert provider.inputs["caMaterial"] == certificate_pem("admin-ca")
    assert provider.inputs["certMaterial"] == certificate_pem("admin-client")
    assert "admin-client-private-key" in provider.inputs["keyMaterial"]
    assert "keyMaterial" in provider.secret_paths
    # ECR credentials go with the provider (sent as --with-registry-auth), never in the service's auth.
    (login,) = json.loads(provider.inputs["registryAuth"])  # provider inputs arrive as JSON text
    assert login["address"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert (login["username"], login["password"]) == ("AWS", ECR_PASSWORD)
    assert "registryAuth" in provider.secret_paths
    service = run.one("docker:index/service:Service")
    assert service.provider.startswith(provider.urn + "::")
    # The provider passes the string verbatim as swarm's SpreadDescriptor: no CLI-style `spread=`.
    assert service.inputs["taskSpec"]["placement"] == {"prefs": ["node.labels.availability_zone"]}
    assert service.inputs["mode"]["replicated"]["replicas"] == config(run, "replicas")
    assert "auth" not in service.inputs


def test_server_certificate_is_for_the_nlb_name(run):
    request = run.named("tls:index/certRequest:CertRequest", "admin-server").inputs
    assert request["dnsNames"] == ["admin-0123456789.eu-west-1.elb.amazonaws.com"]
    assert request["ipAddresses"] == ["127.0.0.1"]  # the Session Manager tunnel's end
    server = run.named("tls:index/locallySignedCert:LocallySignedCert", "admin-server").inputs
    client = run.named("tls:index/locallySignedCert:LocallySignedCert", "admin-client").inputs
    assert "server_auth" in server["allowedUses"] and "client_auth" in client["allowedUses"]


def user_data(run, role) -> str:
    return base64.b64decode(
        run.named("aws:ec2/launchTemplate:LaunchTemplate", f"swarm-{role}s-template").inputs["userData"]
    ).decode()


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_user_data_holds_no_secret_and_fits(run, role):
    text = user_data(run, role)
    assert text.startswith("#cloud-config\n")
    assert len(text.encode()) < 16 * 1024
    for secret in (ECR_PASSWORD, "PRIVATE KEY", "private-key", "BEGIN CERTIFICATE"):
        assert secret not in text
    assert f"restdemo-agent-{run.stack}:v1-" in text


def test_no_secret_in_plain_outputs(run):
    assert run.secret_outputs == ["adminClientKey"]
    assert "admin-client-private-key" in run.outputs["adminClientKey"]
    text = json.dumps({k: v for k, v in run.outputs.items() if k not in run.secret_outputs})
    for secret in (ECR_PASSWORD, "PRIVATE KEY", "private-key"):
        assert secret not in text
    assert run.outputs["adminEndpoint"] == "tcp://admin-0123456789.eu-west-1.elb.amazonaws.com:2376"
    assert run.outputs["url"] == "http://web-0123456789.eu-west-1.elb.amazonaws.com"
    assert run.outputs["logGroup"] == f"/restdemo/{run.stack}"
    assert run.outputs["agentImage"].startswith(
        f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/restdemo-agent-{run.stack}:"
    )


def test_every_taggable_aws_resource_carries_project_stack_owner(run):
    untaggable = {
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "aws:autoscaling/attachment:Attachment",
        "aws:autoscaling/lifecycleHook:LifecycleHook",
        "aws:kms/alias:Alias",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    }
    for resource in run.registered:
        if not resource.type.startswith("aws:") or resource.type in untaggable:
            continue
        if resource.type == GROUP:
            found = {t["key"]: t["value"] for t in resource.inputs["tags"]}
        else:
            found = resource.inputs.get("tags", {})
        assert {k: found.get(k) for k in ("project", "stack", "owner")} == {
            "project": "restdemo",
            "stack": run.stack,
            "owner": "platform-team",
        }, resource.type


def test_an_existing_vpc_replaces_the_network():
    existing = {
        "restdemo:existingVpcId": "vpc-0123456789abcdef0",
        "restdemo:existingPublicSubnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"],
        "restdemo:existingNodeSubnetIds": ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"],
    }
    run = run_program("dev", {**stack_config("dev"), **existing})
    assert not run.of_type("aws:ec2/vpc:Vpc") and not run.of_type("aws:ec2/subnet:Subnet")
    assert group(run, "worker")["vpcZoneIdentifiers"] == existing["restdemo:existingNodeSubnetIds"]
    assert (
        run.named("aws:lb/loadBalancer:LoadBalancer", "web").inputs["subnets"]
        == existing["restdemo:existingPublicSubnetIds"]
    )
    readiness = run.named(SG_INGRESS, "swarm-readiness").inputs
    assert readiness["cidrIpv4"] == "172.31.0.0/16"


def test_prune_interval_reaches_the_agent():
    env = user_data(run_program("dev"), "worker")
    assert "RESTDEMO_PRUNE_INTERVAL=86400" in env
    assert "RESTDEMO_PRUNE_INTERVAL=0" in user_data(run_program("prod"), "worker")


def test_named_resources_that_moved_keep_their_former_identity(run):
    """A stack with state from before the NodeGroup/SwarmState split (even a failed first `up`) keeps
    its table, queue, log group and groups: without an alias Pulumi would create the new ones first,
    which AWS refuses for a name in use, then delete the old ones."""
    swarm = run.named("restdemo:swarm:Swarm", "swarm").urn
    moved = {
        ("aws:dynamodb/table:Table", "swarm-state-table"): "swarm-state",
        ("aws:sqs/queue:Queue", "swarm-state-lifecycle"): "swarm-lifecycle",
        ("aws:cloudwatch/logGroup:LogGroup", "swarm-state-logs"): "swarm-logs",
        (GROUP, "swarm-managers-group"): "swarm-managers",
        (GROUP, "swarm-workers-group"): "swarm-workers",
    }
    for (typ, name), former in moved.items():
        assert run.named(typ, name).aliases == [(former, swarm)], name


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_a_new_node_is_held_until_its_agent_reports_it_a_member(run, role):
    """The refresh waits for a real member: the agent completes the `joined` launch hook once it is
    one; a node that never joins is abandoned and replaced."""
    hook = run.named("aws:autoscaling/lifecycleHook:LifecycleHook", f"swarm-{role}s-joined").inputs
    assert hook == {
        "name": "joined",
        "autoscalingGroupName": group(run, role)["name"],
        "lifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
        "heartbeatTimeout": 1200,
        "defaultResult": "ABANDON",
    }
    env = user_data(run, role)
    assert f"RESTDEMO_GROUP_NAME={group(run, role)['name']}" in env
    assert "RESTDEMO_BOOTSTRAP_TIMEOUT=900" in env  # gives up (and asks to be replaced) before the hook does


def test_a_renewed_certificate_rolls_the_managers_not_the_workers(monkeypatch):
    """pulumi_tls replaces the server certificate in its renewal window (early_renewal_hours): the
    managers' launch template changes with it, so the group's quorum-safe instance refresh rolls
    them one by one onto the new certificate; the workers' template stays as it was."""
    before = run_program("dev")
    monkeypatch.setattr("tests.support.pulumi_program.CERTIFICATE_GENERATION", 2)
    after = run_program("dev")
    assert user_data(before, "manager") != user_data(after, "manager")
    assert user_data(before, "worker") == user_data(after, "worker")
    # The fingerprint the managers check is the new certificate's.
    assert certificate_sha256(certificate_pem("admin-server")) in user_data(after, "manager")
    renewal = after.named("tls:index/locallySignedCert:LocallySignedCert", "admin-server").inputs
    assert renewal["earlyRenewalHours"] == 720
