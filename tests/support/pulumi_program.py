"""Runs the Pulumi program under `pulumi.runtime.set_mocks` and records what it registers.

Pulumi's engine and CLI cannot run on these machines; the mocks stand in for the
engine only. Resource inputs are recorded exactly as the providers would receive them
(wire names, camelCase), secrets unwrapped but remembered.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

REPO = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (REPO / "stacks").glob("Pulumi.*.yaml"))
ACCOUNT = "123456789012"
ECR_PASSWORD = "ecr-password-from-the-mock"
# ECR hands out a new token (valid 12 h) at every call; a test sets this to get another one.
ECR_TOKEN_GENERATION = 1
# The AMI an image name resolves to, and the one SSM's "latest" parameter points at today.
AMI_ID = "ami-0a1b2c3d4e5f60718"
LATEST_AMI_ID = "ami-0123456789abcdef0"
ARM_AMI_ID = "ami-0b2c3d4e5f6071829"
SECRET_SIG = rpc._special_sig_key
SECRET_VALUE = rpc._special_secret_sig


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    secret_paths: list[str]
    custom: bool
    urn: str = ""
    parent: str = ""
    provider: str = ""
    # What the engine would be told besides the inputs: explicit and input dependencies (URNs),
    # and the input names (camelCase) this resource ignores on update.
    dependencies: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    # Former identities: (name, parent URN) of each alias, or (urn, "") for a URN alias.
    aliases: list[tuple[str, str]] = field(default_factory=list)
    retain_on_delete: bool = False  # a delete (or a replacement's) leaves it in the cloud
    # The replacement trigger (a change of it replaces the resource), as the engine receives it.
    replacement_trigger: Any = None


def unwrap(value: Any, path: str = "", secrets: list[str] | None = None) -> Any:
    """Plain values from wire values; the paths of secret ones are appended to `secrets`."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            if secrets is not None:
                secrets.append(path)
            return unwrap(value.get("value"), path, secrets)
        return {k: unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


# Bumped by a test to stand for `pulumi up` renewing the certificates (tls replaces them).
CERTIFICATE_GENERATION = 1


def kms_key_arn(region: str, name: str, stack: str | None = None) -> str:
    """A key id is a UUID, different in every stack."""
    key_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{stack or pulumi.get_stack()}/{name}")
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}"


def certificate_pem(name: str) -> str:
    """A DER stand-in; a renewal (a new CERTIFICATE_GENERATION) makes different certificates."""
    der = base64.b64encode(f"{name}-certificate-{CERTIFICATE_GENERATION}".encode()).decode()
    return f"-----BEGIN CERTIFICATE-----\n{der}\n-----END CERTIFICATE-----\n"


def fake_outputs(typ: str, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    """What the real providers would add to the inputs, deterministically."""
    arn = f"arn:aws:{typ.split(':')[1].split('/')[0]}:{region}:{ACCOUNT}:{name}"
    if typ == "docker:index/registryImage:RegistryImage":
        return {"sha256Digest": "sha256:" + hashlib.sha256(inputs["name"].encode()).hexdigest()}
    if typ == "docker-build:index:Image":
        # What the provider reports after a push: the digest, and the first tag pinned to it.
        digest = "sha256:" + hashlib.sha256(inputs["tags"][0].encode()).hexdigest()
        return {"digest": digest, "ref": f"{inputs['tags'][0]}@{digest}", "contextHash": "mock"}
    if typ == "docker:index/remoteImage:RemoteImage":
        return {"imageId": "sha256:" + hashlib.sha256(inputs["name"].encode()).hexdigest()}
    if typ == "aws:ecr/repository:Repository":
        return {
            "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{inputs['name']}",
            "registryId": ACCOUNT,
            "arn": f"arn:aws:ecr:{region}:{ACCOUNT}:repository/{inputs['name']}",
        }
    if typ == "aws:efs/fileSystem:FileSystem":
        # The provider's dns_name: `<file system id>.efs.<region>.amazonaws.com` (EFS User Guide, "Mounting
        # on Amazon EC2 with a DNS name"); the id is fs- and 8 or 17 hex digits.
        return {"arn": arn, "dnsName": f"fs-0123456789abcdef0.efs.{region}.amazonaws.com"}
    if typ == "aws:rds/instance:Instance":
        # The provider's address (`<identifier>.<12 characters>.<region>.rds.amazonaws.com`), and with
        # manage_master_user_password the secret RDS makes (`rds!db-<uuid>`, Secrets Manager's 6 characters).
        # An identifier_prefix completed as the provider does (id.PrefixedUniqueId: 26 more characters).
        identifier = inputs.get("identifier") or inputs["identifierPrefix"] + "20261207143000000000000001"
        token = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
        secret = f"rds!db-{token[:8]}-{token[8:12]}-{token[12:16]}-{token[16:20]}-{token[20:32]}-{token[32:38]}"
        return {
            "identifier": identifier,
            "arn": f"arn:aws:rds:{region}:{ACCOUNT}:db:{identifier}",
            "address": f"{identifier}.c{token[:11]}.{region}.rds.amazonaws.com",
            "masterUserSecrets": [
                {"secretArn": f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{secret}", "secretStatus": "active"}
            ]
            if inputs.get("manageMasterUserPassword")
            else [],
        }
    if typ == "aws:lb/loadBalancer:LoadBalancer":
        kind = {"application": "app", "network": "net"}[inputs["loadBalancerType"]]
        return {
            "arn": arn,
            "dnsName": f"{name}-0123456789.{region}.elb.amazonaws.com",
            "arnSuffix": f"{kind}/{name}/0123456789abcdef",
            "zoneId": "Z32O12XQLNTSW2",  # ELB's own hosted zone in eu-west-1
        }
    if typ == "aws:acm/certificate:Certificate":
        # What ACM asks for a DNS validation, one per name on it: a CNAME under the name, the same for
        # every certificate.
        names = [inputs["domainName"], *(inputs.get("subjectAlternativeNames") or [])]
        tokens = {n: hashlib.sha256(n.encode()).hexdigest()[:32] for n in names}
        return {
            "arn": f"arn:aws:acm:{region}:{ACCOUNT}:certificate/{name}",
            "domainValidationOptions": [
                {
                    "domainName": n,
                    "resourceRecordName": f"_{tokens[n]}.{n}.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": f"_{tokens[n][::-1]}.acm-validations.aws.",
                }
                for n in names
            ],
        }
    if typ == "aws:acm/certificateValidation:CertificateValidation":
        return {"certificateArn": inputs["certificateArn"]}
    if typ == "aws:route53/record:Record":
        return {"fqdn": inputs["name"].rstrip(".")}
    if typ == "aws:lb/targetGroup:TargetGroup":
        return {"arn": arn, "arnSuffix": f"targetgroup/{name}/fedcba9876543210"}
    if typ == "aws:sns/topic:Topic":
        return {"arn": f"arn:aws:sns:{region}:{ACCOUNT}:{inputs['name']}"}
    if typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        return {"arn": f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{inputs['name']}"}
    if typ == "aws:sqs/queue:Queue":
        return {
            "arn": f"arn:aws:sqs:{region}:{ACCOUNT}:{inputs['name']}",
            "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{inputs['name']}",
        }
    if typ == "aws:dynamodb/table:Table":
        return {"arn": f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{inputs['name']}"}
    if typ == "aws:cloudwatch/logGroup:LogGroup":
        return {"arn": f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{inputs['name']}"}
    if typ == "aws:ec2/vpc:Vpc":
        return {"arn": arn}
    if typ == "aws:ec2/launchTemplate:LaunchTemplate":
        return {"arn": arn, "latestVersion": 1}
    if typ in ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile"):
        named = inputs.get("name") or name
        return {"arn": f"arn:aws:iam::{ACCOUNT}:role/{named}", "name": named}
    if typ == "aws:kms/key:Key":
        return {"arn": kms_key_arn(region, name), "keyId": kms_key_arn(region, name).rpartition("/")[2]}
    if typ == "tls:index/privateKey:PrivateKey":
        return {
            "privateKeyPem": f"-----BEGIN PRIVATE KEY-----\n{name}-private-key\n-----END PRIVATE KEY-----\n",
            "publicKeyPem": f"{name}-public",
        }
    if typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
        return {"certPem": certificate_pem(name), "validityEndTime": "2027-11-28T12:00:00Z"}
    if typ == "tls:index/certRequest:CertRequest":
        return {"certRequestPem": f"{name}-csr"}
    if typ.startswith("aws:"):
        return {"arn": arn}
    return {}


INVOKES = {
    # A registry's answer for a prebuilt image: a digest that follows from the reference.
    "docker:index/getRegistryImage:getRegistryImage": lambda region, name="": {
        "name": name,
        "sha256Digest": "sha256:" + hashlib.sha256(name.encode()).hexdigest(),
    },
    "aws:index/getAvailabilityZones:getAvailabilityZones": lambda region: {
        "id": region,
        "names": [f"{region}a", f"{region}b", f"{region}c"],
        "zoneIds": ["z1", "z2", "z3"],
        "groupNames": [region],
    },
    "aws:index/getCallerIdentity:getCallerIdentity": lambda region: {
        "id": ACCOUNT,
        "accountId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:user/deployer",
        "userId": "AIDA",
    },
    "aws:ssm/getParameter:getParameter": lambda region: {
        "id": "ami",
        "name": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        "value": LATEST_AMI_ID,
        "type": "String",
        "arn": "arn",
        "version": 1,
        "insecureValue": "",
    },
    "aws:ec2/getVpc:getVpc": lambda region: {
        "id": "vpc-0123456789abcdef0",
        "cidrBlock": "172.31.0.0/16",
        "arn": "arn",
        "default": False,
    },
}

GET_AMI = "aws:ec2/getAmi:getAmi"
# Amazon's images by architecture: each Amazon Linux release is published for both, its name ending
# in the architecture (`...-kernel-6.1-x86_64`, `...-kernel-6.1-arm64`).
AMI_IDS = {"x86_64": AMI_ID, "arm64": ARM_AMI_ID}


def amazon_image(query: dict) -> dict:
    """DescribeImages as the provider's data source reads it: the name filter's image, of the
    architecture its name says; a filter it does not pass matches nothing, and the data source fails
    ("Your query returned no results", terraform-provider-aws ec2/ec2_ami_data_source.go)."""
    filters = {f["name"]: f["values"] for f in query.get("filters") or []}
    (name,) = filters["name"]
    arch = next((a for a in AMI_IDS if name.endswith(f"-{a}")), None)
    if arch is None or arch not in filters.get("architecture", [arch]):
        raise ValueError(f"Your query returned no results: {filters}")
    return {
        "id": AMI_IDS[arch],
        "imageId": AMI_IDS[arch],
        "name": name,
        "ownerId": "137112412989",
        "architecture": arch,
    }


ECR_LOGIN = "aws:ecr/getAuthorizationToken:getAuthorizationToken"
# ECR's token is the caller's: through the pull-only role's provider it is another password than
# the deploy identity's (the default provider), so a test can tell which one went where.
PULL_PASSWORD = f"{ECR_PASSWORD}-pull-only"


def ecr_login(region: str, provider: str) -> dict:
    password = ECR_PASSWORD if ECR_TOKEN_GENERATION == 1 else f"{ECR_PASSWORD}-{ECR_TOKEN_GENERATION}"
    return {
        "id": region,
        "userName": "AWS",
        "password": PULL_PASSWORD if "::pull-provider::" in provider else password,
        "authorizationToken": "QVdTOmVjci1wYXNzd29yZA==",
        "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{region}.amazonaws.com",
        "expiresAt": "2026-11-28T12:00:00Z",
        "registryId": ACCOUNT,
    }


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str):
        self.region = region
        self.registered: list[Registered] = []
        self.calls: list[tuple[str, dict]] = []
        self.call_providers: list[tuple[str, str]] = []  # (token, the provider reference it went through)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        secrets: list[str] = []
        inputs = unwrap(args.inputs, secrets=secrets)
        self.registered.append(
            Registered(args.typ, args.name, inputs, secrets, bool(args.custom), provider=args.provider or "")
        )
        return [f"{args.name}-id", {**args.inputs, **fake_outputs(args.typ, args.name, inputs, self.region)}]

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        self.call_providers.append((args.token, args.provider or ""))
        if args.token == ECR_LOGIN:
            return ecr_login(self.region, args.provider or "")
        if args.token == GET_AMI:
            return amazon_image(dict(args.args))
        if args.token in INVOKES:
            return INVOKES[args.token](self.region, **({"name": args.args["name"]} if "name" in args.args else {}))
        raise NotImplementedError(f"the program invoked {args.token}, which these mocks do not know")


class RecordingMonitor(MockMonitor):
    """Also records each resource's URN and parent, which MockResourceArgs does not carry."""

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            # Registrations run on several threads: find this one by type and name.
            entry = next(
                r for r in self.mocks.registered if (r.type, r.name, r.urn) == (request.type, request.name, "")
            )
            entry.urn, entry.parent = response.urn, request.parent
            entry.dependencies = sorted(
                set(request.dependencies) | {u for deps in request.propertyDependencies.values() for u in deps.urns}
            )
            entry.ignore_changes = list(request.ignoreChanges)
            entry.retain_on_delete = bool(request.retainOnDelete)
            entry.aliases = [
                (a.spec.name, a.spec.parentUrn) if a.HasField("spec") else (a.urn, "") for a in request.aliases
            ]
            if request.HasField("replacement_trigger"):
                entry.replacement_trigger = unwrap(json_format.MessageToDict(request.replacement_trigger))
        return response


@dataclass
class ProgramRun:
    stack: str
    registered: list[Registered]
    outputs: dict[str, Any]
    secret_outputs: list[str]
    calls: list[tuple[str, dict]] = field(default_factory=list)
    call_providers: list[tuple[str, str]] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.registered if r.type == typ]

    def one(self, typ: str) -> Registered:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, got {[r.name for r in found]}"
        return found[0]

    def named(self, typ: str, name: str) -> Registered:
        found = [r for r in self.registered if (r.type, r.name) == (typ, name)]
        assert len(found) == 1, f"expected one {typ} named {name}, got {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.registered if r.urn == urn)


def stack_config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]


def wire_config(config: dict[str, Any]) -> dict[str, str]:
    """Config as the engine hands it to the program: strings, structured values as JSON."""

    def text(value: Any) -> str:
        if isinstance(value, (list, dict, bool)):
            return json.dumps(value)
        return str(value)

    return {key: text(value) for key, value in config.items()}


@contextlib.contextmanager
def open_tunnel(port: int):
    """What `python -m ops.tunnel <stack>` gives an `up` with adminAccess session-manager: something
    listening on the tunnel's port (the program waits for it before the docker provider's first call)."""
    listener = socket.socket()
    # A connection of an earlier run closed from this side lingers in TIME_WAIT on the port.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
    except OSError as exc:
        listener.close()
        try:  # already open (an outer run)?
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            raise RuntimeError(f"127.0.0.1:{port} is taken ({exc}) and nothing listens there") from None
        yield
        return
    listener.listen()
    try:
        yield
    finally:
        listener.close()


def run_program(
    stack: str,
    config: dict[str, Any] | None = None,
    *,
    preview: bool = False,
    tunnel: bool = True,
    secret_keys: list[str] | None = None,
) -> ProgramRun:
    """Run infra/program.py afresh for `stack` with `config` (default: its stack file), of which
    `secret_keys` are set with --secret; with `tunnel`, as beside an open Session Manager tunnel."""
    from infra.admin.tunnel import TUNNEL_PORT
    from infra.program import main

    with open_tunnel(TUNNEL_PORT) if tunnel else contextlib.nullcontext():
        return _run(stack, config, preview, main, secret_keys)


def _run(
    stack: str, config: dict[str, Any] | None, preview: bool, main, secret_keys: list[str] | None = None
) -> ProgramRun:
    config = stack_config(stack) if config is None else config
    mocks = RecordingMocks(region=str(config.get("aws:region", "us-east-1")))
    pulumi.runtime.set_mocks(mocks, project="restdemo", stack=stack, preview=preview, monitor=RecordingMonitor(mocks))
    pulumi.runtime.set_all_config(wire_config(config), secret_keys)
    outputs: dict[str, Any] = {}
    secret_outputs: list[str] = []

    @pulumi.runtime.test
    def program():
        exported = main()

        def collect(name: str, value: Any):
            outputs[name] = value

        for name, value in exported.items():
            output = pulumi.Output.from_input(value)
            pulumi.Output.all(output, output.is_secret()).apply(
                lambda pair, name=name: (collect(name, pair[0]), pair[1] and secret_outputs.append(name))
            )
        return pulumi.Output.all(*exported.values())

    program()
    return ProgramRun(stack, mocks.registered, outputs, secret_outputs, mocks.calls, mocks.call_providers)
