"""The kinds of rule the fidelity tier checks and the checks themselves; the rules (what AWS and
the providers apply that Pulumi's mocks do not, each with its source) are data in
tests/fidelity/data/, one module per service or provider.

Five kinds:
- `Field`: a value's allowed characters, length, enum or range, or the form a provider reads back;
- `ForceNew`: inputs whose change replaces the resource; on a named resource the replacement
  deletes first, so a routine settings change must never touch them;
- `TwoPlaces`: an Optional+Computed input also managed by a separate resource; the owner must
  ignore its own view after creation, or each plan undoes the other resource;
- `ReadBackWider`: a ForceNew input the provider reads back with more than was sent; it must be
  set once and ignored afterwards, or every plan replaces the resource;
- `Needs`: what must exist before a resource is created (AWS's ordering, not the data flow).

And one check across resources: each Auto Scaling group launches only instance types whose
architecture its launch template's image is built for (`architecture_problems`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.pulumi_program import ProgramRun, Registered

# --- checks on one value -------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    regex: str
    max_length: int | None = None

    def problem(self, value: Any) -> str | None:
        text = str(value)
        if self.max_length is not None and len(text) > self.max_length:
            return f"longer than {self.max_length} characters"
        if not re.fullmatch(self.regex, text):
            return f"does not match {self.regex}"
        return None


@dataclass(frozen=True)
class OneOf:
    values: tuple

    def problem(self, value: Any) -> str | None:
        return None if value in self.values else f"not one of {', '.join(map(str, self.values))}"


@dataclass(frozen=True)
class Between:
    low: float
    high: float

    def problem(self, value: Any) -> str | None:
        number = float(value)
        return None if self.low <= number <= self.high else f"outside {self.low:g}-{self.high:g}"


@dataclass(frozen=True)
class MultipleOf:
    """A positive whole multiple of `step` (the wire sends numbers as floats: 120.0 counts as 120)."""

    step: int

    def problem(self, value: Any) -> str | None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return "not a number"
        if number <= 0 or not number.is_integer() or int(number) % self.step:
            return f"not a positive multiple of {self.step}"
        return None


@dataclass(frozen=True)
class AnyOf:
    """Passes when any one of `checks` passes (AWS's "10, 20, 30 or a multiple of 60")."""

    checks: tuple

    def problem(self, value: Any) -> str | None:
        problems = [check.problem(value) for check in self.checks]
        return None if None in problems else "; or ".join(problems)


@dataclass(frozen=True)
class Count:
    """How many items a list holds, or how many entries a map holds."""

    low: int
    high: int

    def problem(self, value: Any) -> str | None:
        count = len(value)
        return None if self.low <= count <= self.high else f"has {count} items, not {self.low}-{self.high}"


@dataclass(frozen=True)
class Inside:
    """`check` on what `path` (Field's path syntax) names inside the value: a rule on a field of every
    item of a list whose items do not all have that field (metric queries with a metric or an expression)."""

    path: str
    check: Any

    def problem(self, value: Any) -> str | None:
        for where, inner in values_at(value, self.path):
            if problem := self.check.problem(inner):
                return f"{where} = {inner!r} {problem}"
        return None


@dataclass(frozen=True)
class Satisfies:
    """A rule too particular for the other checks, as a function returning the problem or None."""

    test: Callable[[Any], str | None]

    def problem(self, value: Any) -> str | None:
        return self.test(value)


@dataclass(frozen=True)
class Json:
    """A JSON document sent as a string: it must parse, and `test` (on the parsed document) must pass."""

    test: Callable[[Any], str | None]

    def problem(self, value: Any) -> str | None:
        try:
            document = json.loads(value)
        except (TypeError, ValueError) as exc:
            return f"is not valid JSON ({exc})"
        return self.test(document)


@dataclass(frozen=True)
class ReadBack:
    """The form a provider writes back into state; any other spelling diffs on every preview."""

    canonical: Callable[[Any], str]
    how: str

    def problem(self, value: Any) -> str | None:
        try:
            expected = self.canonical(value)
        except ValueError as exc:
            return str(exc)
        return None if str(value) == expected else f"reads back as {expected!r} ({self.how})"


@dataclass(frozen=True)
class Field:
    """`path` into a resource's inputs (wire names): `a.b`, `a[].b` for every list item, `a{}` for
    every value of a map, `a{keys}` for every key. Unset values are not sent and not checked."""

    type: str
    path: str
    check: Any
    source: str
    bad: Any  # a value the rule must catch

    @property
    def name(self) -> str:
        return f"{self.type.split(':')[-1]}.{self.path}"


def values_at(inputs: Any, path: str) -> list[tuple[str, Any]]:
    """Every (concrete path, value) that `path` names in `inputs`."""
    found: list[tuple[str, Any]] = [("", inputs)]
    for part in path.split("."):
        name, _, mode = part.partition("[") if "[" in part else part.partition("{")
        mode = (
            "list" if part.endswith("[]") else "values" if part.endswith("{}") else "keys" if "{keys}" in part else ""
        )
        step = []
        for where, value in found:
            if not isinstance(value, dict) or name not in value or value[name] is None:
                continue
            inner, here = value[name], f"{where}.{name}".lstrip(".")
            if mode == "list":
                step += [(f"{here}[{i}]", item) for i, item in enumerate(inner)]
            elif mode == "values":
                step += [(f"{here}.{k}", v) for k, v in inner.items()]
            elif mode == "keys":
                step += [(f"{here}{{{k}}}", k) for k in inner]
            else:
                step.append((here, inner))
        found = step
    return found


def field_problems(rule: Field, resources: list[Registered]) -> list[str]:
    return [
        f"{r.name}: {where} = {value!r} {problem} [{rule.source}]"
        for r in resources
        if r.type == rule.type
        for where, value in values_at(r.inputs, rule.path)
        if (problem := rule.check.problem(value))
    ]


def with_value(inputs: dict, path: str, value: Any) -> dict:
    """A copy of `inputs` with the first place `path` names set to `value` (the rule's bad variant)."""
    bad = copy.deepcopy(inputs)
    target = bad
    parts = path.split(".")
    for part in parts[:-1]:
        name = part.rstrip("[]{}").removesuffix("{keys")
        target = target[name][0] if part.endswith("[]") else target[name]
    last = parts[-1]
    name = last.split("[")[0].split("{")[0]
    if last.endswith("[]"):
        target[name] = [value, *target.get(name, [])[1:]]
    elif last.endswith("{keys}"):
        target[name] = {value: "x", **target.get(name, {})}
    elif last.endswith("{}"):
        first = next(iter(target[name]))
        target[name] = {**target[name], first: value}
    else:
        target[name] = value
    return bad


# --- replacements, two owners, create-time order -------------------------------------------


@dataclass(frozen=True)
class ForceNew:
    type: str
    fields: tuple[str, ...]
    source: str
    name_field: str = "name"


def force_new_value(inputs: dict, field: str) -> Any:
    """The part of an input whose change replaces: the value, or for `block{keys}` which keys it has."""
    if field.endswith("{keys}"):
        return sorted(inputs.get(field.removesuffix("{keys}")) or {})
    return inputs.get(field)


def replaced_delete_first(rule: ForceNew, before: ProgramRun, after: ProgramRun) -> list[str]:
    """Named resources (Pulumi replaces those delete-first) whose ForceNew inputs differ between runs."""
    earlier = {r.urn: r for r in before.registered if r.type == rule.type}
    return [
        f"{r.name}: {field} changes, which replaces the named resource delete-first [{rule.source}]"
        for r in after.registered
        if r.type == rule.type and r.urn in earlier and r.inputs.get(rule.name_field)
        for field in rule.fields
        if force_new_value(r.inputs, field) != force_new_value(earlier[r.urn].inputs, field)
    ]


@dataclass(frozen=True)
class TwoPlaces:
    type: str
    field: str
    manager: str
    link: str  # the manager's input naming the owner (by its `owner_key` input)
    owner_key: str
    source: str


def managed_twice(rule: TwoPlaces, run: ProgramRun) -> list[str]:
    problems = []
    for owner in run.of_type(rule.type):
        key = owner.inputs.get(rule.owner_key) if rule.owner_key != "id" else f"{owner.name}-id"
        managers = [m for m in run.of_type(rule.manager) if key is not None and m.inputs.get(rule.link) == key]
        if managers and owner.inputs.get(rule.field) is not None and rule.field not in owner.ignore_changes:
            problems.append(
                f"{owner.name}: {rule.field} is set here and by {', '.join(m.name for m in managers)}; "
                f"the next plan undoes one of them (ignore_changes it) [{rule.source}]"
            )
    return problems


@dataclass(frozen=True)
class WrittenOnTheSwarm:
    """An input something on the swarm writes for the resources labelled `label` (the leader's agent):
    the program must neither set it nor compare it (`ignore_changes`), or each `up` undoes the other."""

    type: str
    field: str  # Pulumi's property path
    label: str
    source: str


def written_twice(rule: WrittenOnTheSwarm, run: ProgramRun) -> list[str]:
    problems = []
    for r in run.of_type(rule.type):
        if rule.label not in {entry["label"] for entry in r.inputs.get("labels") or []}:
            continue
        if values_at(r.inputs, rule.field):
            problems.append(f"{r.name}: sets {rule.field}, which the swarm writes for it [{rule.source}]")
        if rule.field not in r.ignore_changes:
            problems.append(f"{r.name}: {rule.field} is compared on every plan: ignore_changes it [{rule.source}]")
    return problems


@dataclass(frozen=True)
class ReadBackWider:
    """A ForceNew input the provider reads back with more than was sent (Optional+Computed map):
    set, and compared on the next plan, it replaces the resource every time; set it once and
    `ignore_changes` it."""

    type: str
    field: str
    source: str


def replaced_every_time(rule: ReadBackWider, run: ProgramRun) -> list[str]:
    return [
        f"{r.name}: {rule.field} is read back wider than sent and is ForceNew: every plan replaces it "
        f"(ignore_changes it) [{rule.source}]"
        for r in run.of_type(rule.type)
        if r.inputs.get(rule.field) and rule.field not in r.ignore_changes
    ]


@dataclass(frozen=True)
class Needs:
    type: str
    what: str
    required: Callable[[Registered, ProgramRun], list[Registered]]
    source: str


def closure(resource: Registered, run: ProgramRun) -> set[str]:
    """Every URN `resource` depends on, directly or through what it depends on."""
    by_urn = {r.urn: r for r in run.registered}
    seen: set[str] = set()
    todo = list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        todo += by_urn[urn].dependencies if urn in by_urn else []
    return seen


def missing_needs(rule: Needs, run: ProgramRun) -> list[str]:
    problems = []
    for resource in run.of_type(rule.type):
        required = rule.required(resource, run)
        if not required:
            continue
        missing = [r.name for r in required if r.urn not in closure(resource, run)]
        if missing:
            problems.append(
                f"{resource.name}: created without waiting for {rule.what} ({', '.join(missing)}) [{rule.source}]"
            )
    return problems


GROUP = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def architecture_problems(
    run: ProgramRun, images: dict[str, str], types: dict[str, list[str]], source: str
) -> list[str]:
    """Each group's types (its mixed instances overrides, else its template's type) against the
    architecture of its template's image: `images` is DescribeImages' Architecture by image id,
    `types` DescribeInstanceTypes' SupportedArchitectures by type. RunInstances refuses the rest."""
    templates = {f"{r.name}-id": r for r in run.of_type(LAUNCH_TEMPLATE)}  # the mocks' ids
    problems = []
    for group in run.of_type(GROUP):
        mixed = (group.inputs.get("mixedInstancesPolicy") or {}).get("launchTemplate")
        reference = (
            mixed["launchTemplateSpecification"]["launchTemplateId"] if mixed else group.inputs["launchTemplate"]["id"]
        )
        template = templates[reference].inputs
        launched = [o["instanceType"] for o in mixed.get("overrides") or []] if mixed else []
        image_arch = images.get(template["imageId"])
        for instance_type in launched or [template["instanceType"]]:
            if image_arch not in types.get(instance_type, []):
                problems.append(
                    f"{group.name}: {instance_type} runs {'/'.join(types.get(instance_type, ['?']))}, its image "
                    f"{template['imageId']} is {image_arch or 'unknown'} [{source}]"
                )
    return problems


# pulumi-docker-build provider/internal/image.go `Image.Diff`: every input compared as is, but
# `registries` by address and username (never the password: ECR's changes every 12 h) and
# `secrets` without those named in `ignoreSecretsInDiffCalculation` when both sides have them.
# (It also re-hashes the build context from disk; the same source gives the same hash.)
def docker_build_changes(old: dict, new: dict) -> list[str]:
    """The inputs whose change makes the provider rebuild the image."""
    changed = []
    # The provider does not compare ignoreSecretsInDiffCalculation itself; it only applies it.
    for key in sorted((set(old) | set(new)) - {"registries", "secrets", "ignoreSecretsInDiffCalculation"}):
        if old.get(key) != new.get(key):
            changed.append(key)
    old_registries, new_registries = old.get("registries") or [], new.get("registries") or []
    if len(old_registries) != len(new_registries):
        changed.append("registries")
    else:
        for index, (before, after) in enumerate(zip(old_registries, new_registries, strict=True)):
            if (before.get("address"), before.get("username")) != (after.get("address"), after.get("username")):
                changed.append(f"registries[{index}]")
                break
    old_secrets, new_secrets = dict(old.get("secrets") or {}), dict(new.get("secrets") or {})
    for name in new.get("ignoreSecretsInDiffCalculation") or []:
        if name in old_secrets and name in new_secrets:
            del old_secrets[name], new_secrets[name]
    if old_secrets != new_secrets:
        changed.append("secrets")
    return changed
