"""ECR: repositories.

Sources: the AWS ECR API reference and terraform-provider-aws (tpa) internal/service/ecr.
"""

from __future__ import annotations

import json

from tests.fidelity.rules import Field, ForceNew, Json, OneOf, Pattern


def _repository_policy(document) -> str | None:
    """SetRepositoryPolicy policyText: at most 10,240 characters; an IAM policy whose statements
    each name a Principal (a resource policy), an Effect and actions of ECR."""
    if len(json.dumps(document)) > 10240:
        return "longer than 10240 characters"
    for statement in document.get("Statement", []):
        if "Principal" not in statement or statement.get("Effect") not in ("Allow", "Deny"):
            return f"statement {statement.get('Sid')} needs a Principal and an Effect of Allow or Deny"
        if not all(str(action).startswith("ecr:") for action in statement.get("Action", [])):
            return f"statement {statement.get('Sid')} has an action that is not ECR's"
    return None


FIELDS = [
    Field(
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
        "policy",
        Json(_repository_policy),
        "AWS ECR API SetRepositoryPolicy policyText (0-10240); IAM User Guide: a resource policy names a Principal",
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": ["ecr:PutImage"]}]}',
    ),
    # ECR: immutable tags, but the build cache's.
    Field(
        "aws:ecr/repository:Repository",
        "imageTagMutability",
        OneOf(("MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")),
        "AWS ECR API CreateRepository imageTagMutability; tpa ecr/repository.go image_tag_mutability",
        "IMMUTABLE_EXCEPT_CACHE",
    ),
    Field(
        "aws:ecr/repository:Repository",
        "imageTagMutabilityExclusionFilters[].filter",
        Pattern(r"[0-9a-zA-Z._*-]{1,128}"),
        "AWS ECR API ImageTagMutabilityExclusionFilter.filter (1-128, [0-9a-zA-Z._*-])",
        "build cache",
    ),
    Field(
        "aws:ecr/repository:Repository",
        "imageTagMutabilityExclusionFilters[].filterType",
        OneOf(("WILDCARD",)),
        "AWS ECR API ImageTagMutabilityExclusionFilter.filterType",
        "REGEX",
    ),
]


FORCE_NEW = [
    ForceNew("aws:ecr/repository:Repository", ("name",), "tpa ecr/repository.go: name ForceNew"),
]
