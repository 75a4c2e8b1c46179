"""Decide one AWS request against IAM identity policies and a KMS key policy.

AWS's documented evaluation logic for one account (IAM User Guide, "Policy evaluation logic";
KMS Developer Guide, "Key policies": a KMS key is used only if its key policy allows it,
either by naming the principal or by naming the account, which then lets IAM decide):
an explicit Deny in any policy wins; otherwise an Allow is needed.

Written for this project's tests because neither tool at hand decides these requests:
moto's IAM enforcement passes the resource `*` for SSM, Auto Scaling, DynamoDB and KMS calls
(only SQS, IAM and STS have `_determine_resource` in moto 5.2), evaluates only `StringEquals`
conditions and treats a missing condition key as a match, and applies no key policy but its
Deny statements; Principal Mapper (`principalmapper`, the one library that simulates requests
with conditions) does not import on Python 3.10+ (`from collections import Mapping`).
Covered: Action/NotAction, Resource/NotResource, Principal (`*`, role ARNs, the account
root), the condition operators these policies use, the set qualifiers on multivalued keys
(`ForAllValues:` holds when every value matches, and when there is none; `ForAnyValue:` when
one does: IAM User Guide, "Multivalued context keys"), and policy variables in condition values
(`${aws:userid}`, replaced by the request's value; a variable the request lacks matches nothing:
"IAM policy elements: Variables and tags"); any other operator is an error, so a policy this
module cannot judge fails the tests rather than passing them.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

# Operator -> (compare one value with one pattern, negated). Missing keys: a positive operator
# does not match, a negated one does (IAM User Guide, "Condition operators").
OPERATORS = {
    "StringEquals": (lambda value, pattern: value == pattern, False),
    "StringNotEquals": (lambda value, pattern: value == pattern, True),
    "StringLike": (lambda value, pattern: fnmatch.fnmatchcase(value, pattern), False),
    "StringNotLike": (lambda value, pattern: fnmatch.fnmatchcase(value, pattern), True),
    # ArnEquals and ArnLike both take wildcards in each ARN component (IAM User Guide, "ARN condition operators").
    "ArnEquals": (lambda value, pattern: fnmatch.fnmatchcase(value, pattern), False),
    "ArnNotEquals": (lambda value, pattern: fnmatch.fnmatchcase(value, pattern), True),
    "ArnLike": (lambda value, pattern: fnmatch.fnmatchcase(value, pattern), False),
    "ArnNotLike": (lambda value, pattern: fnmatch.fnmatchcase(value, pattern), True),
}


@dataclass(frozen=True)
class Request:
    principal: str  # the role's ARN (aws:PrincipalArn of its sessions)
    action: str
    resource: str
    # A multivalued key (dynamodb:LeadingKeys) holds a list.
    context: dict[str, str | list[str]] = field(default_factory=dict)

    def value(self, key: str) -> str | list[str] | None:
        """Condition keys are case-insensitive; their values are not."""
        key = key.lower()
        if key == "aws:principalarn":
            return self.principal
        if key == "kms:calleraccount":
            return self.principal.split(":")[4]
        return {k.lower(): v for k, v in self.context.items()}.get(key)


def _listed(value) -> list[str]:
    return value if isinstance(value, list) else [value]


def _action_matches(statement: dict, action: str) -> bool:
    if "NotAction" in statement:
        return not any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in _listed(statement["NotAction"]))
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in _listed(statement["Action"]))


def _resource_matches(statement: dict, resource: str) -> bool:
    if "NotResource" in statement:
        return not any(fnmatch.fnmatchcase(resource, p) for p in _listed(statement["NotResource"]))
    return any(fnmatch.fnmatchcase(resource, p) for p in _listed(statement.get("Resource", "*")))


VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _substituted(pattern: str, request: Request) -> str | None:
    """A condition value with its policy variables replaced; None when the request has no value for one."""
    missing = []

    def value(match: re.Match) -> str:
        found = request.value(match.group(1))
        if not isinstance(found, str):
            missing.append(match.group(1))
            return ""
        return found

    replaced = VARIABLE.sub(value, pattern)
    return None if missing else replaced


def _conditions_hold(statement: dict, request: Request) -> bool:
    for qualified, keys in (statement.get("Condition") or {}).items():
        qualifier, _, operator = qualified.rpartition(":")
        if operator not in OPERATORS or qualifier not in ("", "ForAllValues", "ForAnyValue"):
            raise ValueError(f"condition operator {qualified} is not evaluated here")
        compare, negated = OPERATORS[operator]
        for key, patterns in keys.items():
            value = request.value(key)
            patterns = [p for p in (_substituted(p, request) for p in _listed(patterns)) if p is not None]

            def matches(one: str, compare=compare, negated=negated, patterns=patterns) -> bool:
                return any(compare(one, p) for p in patterns) != negated

            if qualifier == "ForAllValues":
                if not all(matches(one) for one in _listed(value or [])):
                    return False
                continue
            if qualifier == "ForAnyValue":
                if not any(matches(one) for one in _listed(value or [])):
                    return False
                continue
            if value is None:
                if not negated:
                    return False
                continue
            if not matches(value):
                return False
    return True


def principal_kind(statement: dict, request: Request) -> str | None:
    """How a resource policy statement names the caller: "direct" (the role, or everyone), "account"
    (the account root: IAM decides), or None."""
    principal = statement.get("Principal")
    if principal == "*":
        return "direct"
    names = _listed((principal or {}).get("AWS", []))
    if "*" in names or request.principal in names:
        return "direct"
    account = request.principal.split(":")[4]
    if f"arn:aws:iam::{account}:root" in names or account in names:
        return "account"
    return None


def _applies(statement: dict, request: Request) -> bool:
    return (
        _action_matches(statement, request.action)
        and _resource_matches(statement, request.resource)
        and _conditions_hold(statement, request)
    )


def identity_allows(policies: list[dict], request: Request) -> bool:
    """Identity policies alone (services without resource policies, e.g. SSM, Auto Scaling)."""
    statements = [s for p in policies for s in _listed(p["Statement"]) if _applies(s, request)]
    return not any(s["Effect"] == "Deny" for s in statements) and any(s["Effect"] == "Allow" for s in statements)


def kms_allows(key_policy: dict, policies: list[dict], request: Request) -> bool:
    """A KMS request: no Deny anywhere, and the key policy allows the caller itself, or allows the
    account and an identity policy allows the caller."""
    identity = [s for p in policies for s in _listed(p["Statement"]) if _applies(s, request)]
    key = [(s, principal_kind(s, request)) for s in _listed(key_policy["Statement"]) if _applies(s, request)]
    key = [(s, kind) for s, kind in key if kind]
    if any(s["Effect"] == "Deny" for s in identity) or any(s["Effect"] == "Deny" for s, _ in key):
        return False
    allows = {kind for s, kind in key if s["Effect"] == "Allow"}
    return "direct" in allows or ("account" in allows and any(s["Effect"] == "Allow" for s in identity))


def resource_allows(resource_policy: dict | None, policies: list[dict], request: Request) -> bool:
    """A request to a resource with a resource-based policy, within one account (IAM User Guide,
    "Policy evaluation logic", "Resource-based policies"): an explicit Deny in either policy wins;
    otherwise an Allow in the identity policies, or in the resource policy for the caller itself
    (its ARN, or `*`), is enough. A statement naming the account root delegates to IAM."""
    identity = [s for p in policies for s in _listed(p["Statement"]) if _applies(s, request)]
    named = [(s, principal_kind(s, request)) for s in _listed((resource_policy or {}).get("Statement", []))]
    resource = [(s, kind) for s, kind in named if kind and _applies(s, request)]
    if any(s["Effect"] == "Deny" for s in identity) or any(s["Effect"] == "Deny" for s, _ in resource):
        return False
    return any(s["Effect"] == "Allow" for s in identity) or any(
        s["Effect"] == "Allow" and kind == "direct" for s, kind in resource
    )
