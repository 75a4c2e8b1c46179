"""Systems Manager: parameters and documents.

Sources: terraform-provider-aws (tpa) internal/service/ssm (and kms for a parameter's key) and the
AWS SSM API reference.
"""

from __future__ import annotations

from tests.fidelity.rules import Field, ForceNew, OneOf, Pattern

PARAMETER_FIELDS = [
    Field(
        "aws:ssm/parameter:Parameter",
        "name",
        Pattern(r"(?!/?(?i:aws|ssm))/?([a-zA-Z0-9_.-]+/){0,14}[a-zA-Z0-9_.-]+", 1011),
        "AWS SSM PutParameter Name (15 levels, 1011 characters, no aws/ssm prefix)",
        "/restdemo/dev/tls key",
    ),
    Field(
        "aws:ssm/parameter:Parameter",
        "description",
        Pattern(r".{0,1024}"),
        "tpa ssm/parameter.go StringLenBetween(0, 1024)",
        "d" * 1025,
    ),
    Field(
        "aws:ssm/parameter:Parameter",
        "type",
        OneOf(("String", "StringList", "SecureString")),
        "tpa ssm/parameter.go ParameterType_Values",
        "Secure",
    ),
    Field(
        "aws:ssm/parameter:Parameter",
        "keyId",
        Pattern(r"[0-9A-Za-z_:/-]{1,2048}"),
        "tpa kms/validate.go validKeyARNOrAliasARN / key id (UUID)",
        "key id with spaces",
    ),
]


# Kept apart from PARAMETER_FIELDS only so the assembled table keeps its order (after IAM's and KMS's).
DOCUMENT_FIELDS = [
    Field(
        "aws:ssm/document:Document",
        "name",
        Pattern(r"[0-9A-Za-z_.-]{3,128}"),
        "tpa ssm/document.go name ^[0-9A-Za-z_.-]+$, StringLenBetween(3, 128)",
        "restdemo dev session",
    ),
    Field(
        "aws:ssm/document:Document",
        "documentType",
        OneOf(("Command", "Policy", "Automation", "Session", "Package", "ApplicationConfiguration")),
        "tpa ssm/document.go document_type ssm.DocumentType_Values (those a stack may create)",
        "Shell",
    ),
    Field(
        "aws:ssm/document:Document",
        "documentFormat",
        OneOf(("YAML", "JSON", "TEXT")),
        "tpa ssm/document.go document_format ssm.DocumentFormat_Values",
        "XML",
    ),
]


FORCE_NEW = [
    ForceNew("aws:ssm/parameter:Parameter", ("name", "dataType"), "tpa ssm/parameter.go: name, data_type ForceNew"),
]
