"""ECR: repositories.

Sources: the AWS ECR API reference and terraform-provider-aws (tpa) internal/service/ecr.
"""

from __future__ import annotations

from tests.fidelity.rules import Field, ForceNew, OneOf, Pattern

FIELDS = [
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
