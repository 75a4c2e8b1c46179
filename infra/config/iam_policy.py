"""IAM policy documents' building blocks, as pure functions: every component that writes a policy
(the swarm's roles and key, the pull-only role, the alarm topic's key) builds it from these."""

from __future__ import annotations

import json


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)


def allow(actions: list[str], resources: list[str] | str) -> dict:
    return {"Effect": "Allow", "Action": sorted(actions), "Resource": resources}


def account_trusts(account: str) -> dict:
    """Trust policy: principals of `account` may assume the role, as their own IAM policies allow."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
        ],
    }


def assume_role(service: str) -> str:
    """Trust policy: only `service` (ec2.amazonaws.com, autoscaling.amazonaws.com) assumes the role."""
    return policy({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})


def account_administers_the_key(account: str) -> dict:
    """A key policy's first statement: the account decides through IAM who else may use the key."""
    return {
        "Sid": "AccountAdministersTheKey",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
