"""The restdemo policy pack: `pulumi preview --policy-pack policy --policy-pack-config policy/<stack>.json`."""

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, PolicyPack, ResourceValidationPolicy
from rules import DEFAULT_CONFIG, RULES, Resource

CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "minZones": {"type": "integer", "minimum": 1, "default": DEFAULT_CONFIG["minZones"]},
        "requireDeletionProtection": {"type": "boolean", "default": DEFAULT_CONFIG["requireDeletionProtection"]},
        "publicPorts": {"type": "array", "items": {"type": "integer"}, "default": DEFAULT_CONFIG["publicPorts"]},
        "requiredTags": {"type": "array", "items": {"type": "string"}, "default": DEFAULT_CONFIG["requiredTags"]},
        "requireHttps": {"type": "boolean", "default": DEFAULT_CONFIG["requireHttps"]},
    }
)


def policy(name: str, description: str, check) -> ResourceValidationPolicy:
    def validate(args, report_violation):
        config = {**DEFAULT_CONFIG, **dict(args.get_config() or {})}
        for message in check(Resource(args.resource_type, args.name, dict(args.props)), config):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=CONFIG_SCHEMA,
    )


PolicyPack(name="restdemo", policies=[policy(name, *rule) for name, rule in RULES.items()])
