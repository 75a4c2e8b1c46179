"""What the deployer's AWS identity must be allowed: `pulumi up`, `preview`, `refresh` and `destroy`
of every stack, and `make down`'s teardown.

Each AWS resource type the program creates, and each data source it reads, maps to the IAM actions
terraform-provider-aws calls to create, read, update, tag and delete it (the resource's
`internal/service/<service>/<resource>.go`; names from AWS's Service Authorization Reference). A
test derives the types from the program under mocks over every stack and every optional feature,
and fails on a type missing here or listed here and no longer made. `make docs` writes the policy
document, docs/deployer-policy.json:

    python -m infra.config.deployer_permissions [--check]

The policy scopes actions, not resources: the program names many resources by Pulumi's
auto-naming. Give each stack its own account (docs/security.md) rather than narrowing this.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

POLICY_FILE = Path(__file__).resolve().parents[2] / "docs" / "deployer-policy.json"

TAGGING_EC2 = ("ec2:CreateTags", "ec2:DeleteTags")
SECURITY_GROUP_RULES = (
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:ModifySecurityGroupRules",
    "ec2:DescribeSecurityGroupRules",
    *TAGGING_EC2,
)
LOAD_BALANCING_TAGS = ("elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags")
LOAD_BALANCING_READ = ("elasticloadbalancing:Describe*",)

PERMISSIONS: dict[str, tuple[str, ...]] = {
    # ACM: certificate.go, certificate_validation.go (waits on DescribeCertificate).
    "aws:acm/certificate:Certificate": (
        "acm:RequestCertificate",
        "acm:DescribeCertificate",
        "acm:ListTagsForCertificate",
        "acm:AddTagsToCertificate",
        "acm:RemoveTagsFromCertificate",
        "acm:UpdateCertificateOptions",
        "acm:DeleteCertificate",
    ),
    "aws:acm/certificateValidation:CertificateValidation": ("acm:DescribeCertificate",),
    # Auto Scaling: group.go (a launch template's group: ec2:RunInstances and iam:PassRole for its
    # instance profile, AWS's "Launch template support" page), attachment.go, lifecycle_hook.go.
    "aws:autoscaling/group:Group": (
        "autoscaling:CreateAutoScalingGroup",
        "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:DeleteAutoScalingGroup",
        "autoscaling:Describe*",
        "autoscaling:CreateOrUpdateTags",
        "autoscaling:DeleteTags",
        "autoscaling:SetInstanceProtection",
        "autoscaling:EnableMetricsCollection",
        "autoscaling:DisableMetricsCollection",
        "autoscaling:SuspendProcesses",
        "autoscaling:ResumeProcesses",
        "autoscaling:StartInstanceRefresh",
        "autoscaling:CancelInstanceRefresh",
        "ec2:RunInstances",
        "ec2:DescribeLaunchTemplateVersions",
        "iam:PassRole",
        "iam:CreateServiceLinkedRole",
    ),
    "aws:autoscaling/attachment:Attachment": (
        "autoscaling:AttachLoadBalancerTargetGroups",
        "autoscaling:DetachLoadBalancerTargetGroups",
        "autoscaling:AttachTrafficSources",
        "autoscaling:DetachTrafficSources",
        "autoscaling:Describe*",
    ),
    "aws:autoscaling/policy:Policy": (
        "autoscaling:PutScalingPolicy",
        "autoscaling:DeletePolicy",
        "autoscaling:Describe*",
    ),
    "aws:autoscaling/lifecycleHook:LifecycleHook": (
        "autoscaling:PutLifecycleHook",
        "autoscaling:DeleteLifecycleHook",
        "autoscaling:Describe*",
        "iam:PassRole",
    ),
    # CloudWatch: dashboard.go, metric_alarm.go; EventBridge: rule.go, target.go; Logs: group.go.
    "aws:cloudwatch/dashboard:Dashboard": (
        "cloudwatch:PutDashboard",
        "cloudwatch:GetDashboard",
        "cloudwatch:DeleteDashboards",
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:DeleteAlarms",
        "cloudwatch:ListTagsForResource",
        "cloudwatch:TagResource",
        "cloudwatch:UntagResource",
    ),
    "aws:cloudwatch/eventRule:EventRule": (
        "events:PutRule",
        "events:DescribeRule",
        "events:DeleteRule",
        "events:EnableRule",
        "events:DisableRule",
        "events:ListTargetsByRule",
        "events:ListTagsForResource",
        "events:TagResource",
        "events:UntagResource",
    ),
    "aws:cloudwatch/eventTarget:EventTarget": ("events:PutTargets", "events:RemoveTargets", "events:ListTargetsByRule"),
    "aws:cloudwatch/logGroup:LogGroup": (
        "logs:CreateLogGroup",
        "logs:DeleteLogGroup",
        "logs:DescribeLogGroups",
        "logs:PutRetentionPolicy",
        "logs:DeleteRetentionPolicy",
        "logs:ListTagsForResource",
        "logs:TagResource",
        "logs:UntagResource",
    ),
    # DynamoDB: table.go (point-in-time recovery, TTL and the streaming destination are read back).
    "aws:dynamodb/table:Table": (
        "dynamodb:CreateTable",
        "dynamodb:UpdateTable",
        "dynamodb:DeleteTable",
        "dynamodb:Describe*",
        "dynamodb:ListTagsOfResource",
        "dynamodb:TagResource",
        "dynamodb:UntagResource",
        "dynamodb:UpdateContinuousBackups",
        "dynamodb:UpdateTimeToLive",
    ),
    # EC2 and VPC: vpc.go, subnet.go, internet_gateway.go, eip.go, nat_gateway.go, route_table.go,
    # route_table_association.go, security_group.go, launch_template.go, and vpc's
    # security_group_ingress_rule.go / security_group_egress_rule.go.
    "aws:ec2/vpc:Vpc": ("ec2:CreateVpc", "ec2:DeleteVpc", "ec2:ModifyVpcAttribute", "ec2:Describe*", *TAGGING_EC2),
    "aws:ec2/subnet:Subnet": (
        "ec2:CreateSubnet",
        "ec2:DeleteSubnet",
        "ec2:ModifySubnetAttribute",
        "ec2:Describe*",
        *TAGGING_EC2,
    ),
    "aws:ec2/internetGateway:InternetGateway": (
        "ec2:CreateInternetGateway",
        "ec2:AttachInternetGateway",
        "ec2:DetachInternetGateway",
        "ec2:DeleteInternetGateway",
        "ec2:Describe*",
        *TAGGING_EC2,
    ),
    "aws:ec2/eip:Eip": (
        "ec2:AllocateAddress",
        "ec2:ReleaseAddress",
        "ec2:DisassociateAddress",
        "ec2:Describe*",
        *TAGGING_EC2,
    ),
    "aws:ec2/natGateway:NatGateway": ("ec2:CreateNatGateway", "ec2:DeleteNatGateway", "ec2:Describe*", *TAGGING_EC2),
    "aws:ec2/routeTable:RouteTable": (
        "ec2:CreateRouteTable",
        "ec2:DeleteRouteTable",
        "ec2:CreateRoute",
        "ec2:ReplaceRoute",
        "ec2:DeleteRoute",
        "ec2:Describe*",
        *TAGGING_EC2,
    ),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": (
        "ec2:AssociateRouteTable",
        "ec2:DisassociateRouteTable",
        "ec2:ReplaceRouteTableAssociation",
        "ec2:Describe*",
    ),
    "aws:ec2/securityGroup:SecurityGroup": (
        "ec2:CreateSecurityGroup",
        "ec2:DeleteSecurityGroup",
        "ec2:Describe*",
        *SECURITY_GROUP_RULES,
    ),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": SECURITY_GROUP_RULES,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": SECURITY_GROUP_RULES,
    "aws:ec2/launchTemplate:LaunchTemplate": (
        "ec2:CreateLaunchTemplate",
        "ec2:CreateLaunchTemplateVersion",
        "ec2:ModifyLaunchTemplate",
        "ec2:DeleteLaunchTemplate",
        "ec2:DeleteLaunchTemplateVersions",
        "ec2:GetLaunchTemplateData",
        "ec2:Describe*",
        "iam:PassRole",
        *TAGGING_EC2,
    ),
    # ECR: repository.go, lifecycle_policy.go, repository_policy.go; the builds push (and the deploy
    # job's cache reads back) through the registry API; make down empties the repositories.
    "aws:ecr/repository:Repository": (
        "ecr:CreateRepository",
        "ecr:DeleteRepository",
        "ecr:DescribeRepositories",
        "ecr:PutImageScanningConfiguration",
        "ecr:PutImageTagMutability",
        "ecr:ListTagsForResource",
        "ecr:TagResource",
        "ecr:UntagResource",
        "ecr:BatchCheckLayerAvailability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:DescribeImages",
        "ecr:ListImages",
        "ecr:BatchDeleteImage",
    ),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": (
        "ecr:PutLifecyclePolicy",
        "ecr:GetLifecyclePolicy",
        "ecr:DeleteLifecyclePolicy",
    ),
    "aws:ecr/repositoryPolicy:RepositoryPolicy": (
        "ecr:SetRepositoryPolicy",
        "ecr:GetRepositoryPolicy",
        "ecr:DeleteRepositoryPolicy",
    ),
    # EFS: file_system.go, mount_target.go, backup_policy.go. A file system under the stack's key needs
    # the caller's kms:CreateGrant and kms:DescribeKey on it; a mount target is a network interface
    # EFS makes in the subnet as the caller (EFS User Guide, "Identity-based policy examples", and
    # "Data encryption": "Amazon EFS key policies for AWS KMS").
    "aws:efs/fileSystem:FileSystem": (
        "elasticfilesystem:CreateFileSystem",
        "elasticfilesystem:DescribeFileSystems",
        "elasticfilesystem:UpdateFileSystem",
        "elasticfilesystem:DeleteFileSystem",
        "elasticfilesystem:DescribeLifecycleConfiguration",
        "elasticfilesystem:PutLifecycleConfiguration",
        "elasticfilesystem:ListTagsForResource",
        "elasticfilesystem:TagResource",
        "elasticfilesystem:UntagResource",
        "kms:CreateGrant",
        "kms:DescribeKey",
    ),
    "aws:efs/mountTarget:MountTarget": (
        "elasticfilesystem:CreateMountTarget",
        "elasticfilesystem:DescribeMountTargets",
        "elasticfilesystem:DeleteMountTarget",
        "elasticfilesystem:DescribeMountTargetSecurityGroups",
        "elasticfilesystem:ModifyMountTargetSecurityGroups",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:Describe*",
    ),
    "aws:efs/backupPolicy:BackupPolicy": (
        "elasticfilesystem:PutBackupPolicy",
        "elasticfilesystem:DescribeBackupPolicy",
    ),
    # IAM: role.go (reads back inline and attached policies and profiles before delete),
    # role_policy.go, instance_profile.go.
    "aws:iam/role:Role": (
        "iam:CreateRole",
        "iam:GetRole",
        "iam:UpdateRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:DeleteRole",
        "iam:TagRole",
        "iam:UntagRole",
        "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies",
        "iam:ListInstanceProfilesForRole",
    ),
    "aws:iam/rolePolicy:RolePolicy": ("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"),
    "aws:iam/instanceProfile:InstanceProfile": (
        "iam:CreateInstanceProfile",
        "iam:GetInstanceProfile",
        "iam:DeleteInstanceProfile",
        "iam:AddRoleToInstanceProfile",
        "iam:RemoveRoleFromInstanceProfile",
        "iam:TagInstanceProfile",
        "iam:UntagInstanceProfile",
    ),
    # KMS: key.go (a key is scheduled for deletion, never deleted at once), alias.go.
    "aws:kms/key:Key": (
        "kms:CreateKey",
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:PutKeyPolicy",
        "kms:GetKeyRotationStatus",
        "kms:EnableKeyRotation",
        "kms:ListResourceTags",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:ScheduleKeyDeletion",
    ),
    "aws:kms/alias:Alias": ("kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias", "kms:ListAliases"),
    # Elastic Load Balancing v2: load_balancer.go, target_group.go, listener.go.
    "aws:lb/loadBalancer:LoadBalancer": (
        "elasticloadbalancing:CreateLoadBalancer",
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:ModifyLoadBalancerAttributes",
        "elasticloadbalancing:SetSecurityGroups",
        "elasticloadbalancing:SetSubnets",
        "iam:CreateServiceLinkedRole",
        *LOAD_BALANCING_READ,
        *LOAD_BALANCING_TAGS,
    ),
    "aws:lb/targetGroup:TargetGroup": (
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:ModifyTargetGroupAttributes",
        *LOAD_BALANCING_READ,
        *LOAD_BALANCING_TAGS,
    ),
    "aws:lb/listener:Listener": (
        "elasticloadbalancing:CreateListener",
        "elasticloadbalancing:DeleteListener",
        "elasticloadbalancing:ModifyListener",
        *LOAD_BALANCING_READ,
        *LOAD_BALANCING_TAGS,
    ),
    # listener_rule.go: a Compose service's route (priority changes through SetRulePriorities).
    "aws:lb/listenerRule:ListenerRule": (
        "elasticloadbalancing:CreateRule",
        "elasticloadbalancing:DeleteRule",
        "elasticloadbalancing:ModifyRule",
        "elasticloadbalancing:SetRulePriorities",
        *LOAD_BALANCING_READ,
        *LOAD_BALANCING_TAGS,
    ),
    # RDS: instance.go (creates, or restores from a snapshot, then modifies what a restore does not take:
    # the managed master password; waits on DescribeDBInstances; a final snapshot on delete),
    # subnet_group.go. Storage under the stack's key needs the caller's kms:CreateGrant and
    # kms:DescribeKey; RDS makes the master secret as the caller (RDS User Guide, "Password management with
    # Amazon RDS and AWS Secrets Manager": secretsmanager:CreateSecret, TagResource, and kms:Decrypt and
    # GenerateDataKey on its key, AWS's managed one here).
    "aws:rds/instance:Instance": (
        "rds:*DBInstance",  # Create, Modify, Delete (and Reboot, Start, Stop: none the program calls)
        "rds:RestoreDBInstanceFromDBSnapshot",
        "rds:CreateDBSnapshot",
        "rds:Describe*",
        "rds:*Tags*",  # AddTagsToResource, RemoveTagsFromResource, ListTagsForResource: RDS's only three
        "kms:CreateGrant",
        "kms:DescribeKey",
        "secretsmanager:CreateSecret",
        "secretsmanager:TagResource",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    ),
    # Create, Describe (DescribeDBSubnetGroups), Modify and Delete: the four actions on a DB subnet group.
    "aws:rds/subnetGroup:SubnetGroup": ("rds:*DBSubnetGroup*", "rds:*Tags*"),
    # Route 53: record.go (waits for the change to be INSYNC).
    "aws:route53/record:Record": (
        "route53:ChangeResourceRecordSets",
        "route53:ListResourceRecordSets",
        "route53:GetChange",
        "route53:GetHostedZone",
    ),
    # SNS: topic.go, topic_policy.go (SetTopicAttributes Policy), topic_subscription.go.
    "aws:sns/topic:Topic": (
        "sns:CreateTopic",
        "sns:DeleteTopic",
        "sns:GetTopicAttributes",
        "sns:SetTopicAttributes",
        "sns:ListTagsForResource",
        "sns:TagResource",
        "sns:UntagResource",
    ),
    "aws:sns/topicPolicy:TopicPolicy": ("sns:GetTopicAttributes", "sns:SetTopicAttributes"),
    "aws:sns/topicSubscription:TopicSubscription": (
        "sns:Subscribe",
        "sns:Unsubscribe",
        "sns:GetSubscriptionAttributes",
        "sns:SetSubscriptionAttributes",
        "sns:ListSubscriptionsByTopic",
    ),
    # SQS: queue.go.
    "aws:sqs/queue:Queue": (
        "sqs:CreateQueue",
        "sqs:DeleteQueue",
        "sqs:GetQueueAttributes",
        "sqs:SetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ListQueueTags",
        "sqs:TagQueue",
        "sqs:UntagQueue",
    ),
    # Systems Manager: document.go, parameter.go (SecureString under the stack's key: SSM calls
    # KMS as the caller, Encrypt on put, Decrypt on the read back with decryption).
    "aws:ssm/document:Document": (
        "ssm:CreateDocument",
        "ssm:UpdateDocument",
        "ssm:UpdateDocumentDefaultVersion",
        "ssm:DeleteDocument",
        "ssm:DescribeDocument",
        "ssm:GetDocument",
        "ssm:DescribeDocumentPermission",
        "ssm:ListTagsForResource",
        "ssm:AddTagsToResource",
        "ssm:RemoveTagsFromResource",
    ),
    "aws:ssm/parameter:Parameter": (
        "ssm:PutParameter",
        "ssm:GetParameter",
        "ssm:GetParameters",
        "ssm:DescribeParameters",
        "ssm:DeleteParameter",
        "ssm:ListTagsForResource",
        "ssm:AddTagsToResource",
        "ssm:RemoveTagsFromResource",
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    ),
    # Data sources: ec2 ami.go, availability_zones.go, sts caller_identity.go (GetCallerIdentity
    # needs no permission), ecr authorization_token.go.
    "aws:ec2/getAmi:getAmi": ("ec2:DescribeImages",),
    "aws:index/getAvailabilityZones:getAvailabilityZones": ("ec2:DescribeAvailabilityZones",),
    "aws:index/getCallerIdentity:getCallerIdentity": (),
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": ("ecr:GetAuthorizationToken",),
}

# What the operator tools call besides the program: the Docker API's tunnel (ops/tunnel.py:
# a Session Manager port forward to a manager it finds through Auto Scaling and EC2).
OPERATOR_TOOLS: dict[str, tuple[str, ...]] = {
    "ops/tunnel.py": (
        "ssm:StartSession",
        "ssm:TerminateSession",
        "autoscaling:DescribeAutoScalingGroups",
        "ec2:DescribeInstances",
    ),
}

# The pull-only role the program makes and whose provider reads the registry's login (infra/image/pull.py).
PULLER_ROLE = "arn:aws:iam::*:role/restdemo-*-puller"
# iam:PassRole only to the services the program hands roles to: EC2 (instance profiles) and Auto
# Scaling (the lifecycle hook's notification role).
PASSED_TO = ["ec2.amazonaws.com", "autoscaling.amazonaws.com"]


# Reads collapse into their verb's wildcard: the document must fit IAM's 6,144 characters for a
# managed policy (IAM and AWS STS quotas), and reading back is all they allow.
READ_VERBS = ("Describe", "List", "Get")


def _written(action: str) -> str:
    service, name = action.split(":")
    verb = next((v for v in READ_VERBS if name.startswith(v)), None)
    return f"{service}:{verb}*" if verb else action


def policy_document(permissions: dict[str, tuple[str, ...]] = PERMISSIONS) -> dict:
    """The actions in one statement, sorted (a statement per service would not fit), with the
    operator tools'; PassRole held to the services above, AssumeRole to the pull-only role."""
    granted = [*permissions.values(), *OPERATOR_TOOLS.values()]
    actions = {_written(action) for group in granted for action in group} - {"iam:PassRole"}
    # A service's TagResource and UntagResource as one `*TagResource`, which matches those two only.
    for service in {action.split(":")[0] for action in actions}:
        pair = {f"{service}:TagResource", f"{service}:UntagResource"}
        if pair <= actions:
            actions = actions - pair | {f"{service}:*TagResource"}
    program = {"Sid": "ProgramResources", "Effect": "Allow", "Action": sorted(actions), "Resource": "*"}
    statements: list[dict] = [program]
    statements += [
        {
            "Sid": "PassRoleToNodesAndAutoScaling",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:PassedToService": PASSED_TO}},
        },
        {"Sid": "AssumeThePullOnlyRole", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": PULLER_ROLE},
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def rendered() -> str:
    return json.dumps(policy_document(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.config.deployer_permissions")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed document differs")
    args = parser.parse_args(argv)
    if args.check:
        if POLICY_FILE.read_text() != rendered():
            print(f"{POLICY_FILE.name} is stale: run make docs", file=sys.stderr)
            return 1
        return 0
    POLICY_FILE.write_text(rendered())
    print(f"wrote {POLICY_FILE.relative_to(POLICY_FILE.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
