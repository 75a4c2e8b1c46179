"""`make cost STACK=<stack>`: what an AWS stack costs a month, from its stack file's settings, as
shipped and with the capacity levers: all on-demand x86 (every stack before spot), the workers as
the stack buys them (on-demand base and share, the rest spot), and Graviton's types of the same size.

  python scripts/cost.py <stack> [--file stacks/Pulumi.<stack>.yaml]

Prices: eu-west-1, Linux, per hour. On-demand from AWS's EC2 On-Demand pricing page (the 2025 list,
as docs/operations.md "What it costs" has used since 2026-11; these machines cannot reach AWS's price
pages, so not checked since). Spot from the EC2 Spot pricing page's eu-west-1 figures, a typical
month of 2025, as remembered and not checked from here: spot prices move every hour, by pool.
Check the AWS Pricing Calculator before you budget. Exit 1 with one line for a stack that is not
AWS's or a type without a price here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HOURS = 730
# type: (on-demand, spot) $/hour.
PRICES = {
    "t2.small": (0.025, 0.0075),
    "t2.medium": (0.05, 0.0151),
    "t3.small": (0.0228, 0.0071),
    "t3.medium": (0.0456, 0.0142),
    "t3.large": (0.0912, 0.0290),
    "t3a.small": (0.0204, 0.0066),
    "t3a.medium": (0.0408, 0.0135),
    "t3a.large": (0.0816, 0.0270),
    "t4g.small": (0.0184, 0.0058),
    "t4g.medium": (0.0368, 0.0116),
    "t4g.large": (0.0736, 0.0232),
}
# The rest of a stack, as docs/operations.md "What it costs" prices it.
GP3_GB_MONTH = 0.088
LOAD_BALANCER_HOUR = 0.0252  # the ALB's and the admin NLB's, each
NAT_HOUR = 0.048
IPV4_HOUR = 0.005


class NoPrice(ValueError):
    pass


def price(instance_type: str, spot: bool = False) -> float:
    if instance_type not in PRICES:
        raise NoPrice(f"no price for {instance_type} here; add it to PRICES in scripts/cost.py from AWS's pages")
    return PRICES[instance_type][1 if spot else 0] * HOURS


def graviton(instance_type: str) -> str:
    """The burstable Graviton type of the same size (t4g), for t2, t3 and t3a."""
    family, _, size = instance_type.partition(".")
    return f"t4g.{size}" if family in ("t2", "t3", "t3a") else instance_type


@dataclass(frozen=True)
class Lever:
    name: str
    managers: float
    workers: float

    @property
    def compute(self) -> float:
        return self.managers + self.workers


def levers(settings) -> list[Lever]:
    """Each way the stack's compute may be bought, the first the baseline: all on-demand x86."""
    from infra.config.capacity import instance_types, on_demand_count

    managers, workers = settings.manager_count, settings.worker_count
    on_demand = on_demand_count(workers, settings.worker_on_demand_base, settings.worker_on_demand_percent)
    listed = instance_types(settings.worker_instance_type, settings.worker_instance_types)

    def bought(manager_type: str, worker_types: list[str]) -> tuple[float, float]:
        # Spot from the listed pools: their mean, as price-capacity-optimized spreads over them.
        spot = sum(price(t, spot=True) for t in worker_types) / len(worker_types)
        return managers * price(manager_type), on_demand * price(worker_types[0]) + (workers - on_demand) * spot

    return [
        Lever(
            "all on-demand, x86",
            managers * price(settings.manager_instance_type),
            workers * price(settings.worker_instance_type),
        ),
        Lever("as shipped", *bought(settings.manager_instance_type, listed)),
        Lever(
            "as shipped, on Graviton (t4g: workerInstanceType, managerInstanceType)",
            *bought(graviton(settings.manager_instance_type), list(dict.fromkeys(graviton(t) for t in listed))),
        ),
    ]


def other_costs(settings) -> float:
    """Disks, the two load balancers, NAT gateways (private nodes), public IPv4 addresses (the nodes'
    when public, one per zone for each load balancer, the NAT gateways')."""
    nodes = settings.manager_count + settings.worker_count
    zones = len(settings.public_subnet_cidrs)
    nats = len(settings.private_subnet_cidrs)
    addresses = (0 if nats else nodes) + 2 * zones + nats
    return (
        nodes * settings.node_volume_gb * GP3_GB_MONTH
        + 2 * LOAD_BALANCER_HOUR * HOURS
        + nats * NAT_HOUR * HOURS
        + addresses * IPV4_HOUR * HOURS
    )


def table(stack: str, settings) -> str:
    from infra.config.capacity import instance_types, on_demand_count

    on_demand = on_demand_count(
        settings.worker_count, settings.worker_on_demand_base, settings.worker_on_demand_percent
    )
    listed = ", ".join(instance_types(settings.worker_instance_type, settings.worker_instance_types))
    baseline, rest = levers(settings), other_costs(settings)
    lines = [
        f"{stack}: {settings.manager_count} managers ({settings.manager_instance_type}, on-demand), "
        f"{settings.worker_count} workers ({on_demand} on-demand, {settings.worker_count - on_demand} spot; {listed})",
        "",
        "| how the compute is bought | managers | workers | compute | compute vs all on-demand x86 | "
        "disks, load balancers, NAT, IPv4 | about a month |",
        "|---|---|---|---|---|---|---|",
    ]
    for lever in baseline:
        share = lever.compute / baseline[0].compute if baseline[0].compute else 1.0
        lines.append(
            f"| {lever.name} | ${lever.managers:.0f} | ${lever.workers:.0f} | ${lever.compute:.0f} | {share:.0%} | "
            f"${rest:.0f} | ${lever.compute + rest:.0f} |"
        )
    lines += ["", "eu-west-1 prices of 2025, spot's as remembered (scripts/cost.py): check the AWS Pricing Calculator."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from check import readable, stack_arguments, stack_file_config

    from infra.config.settings import SettingsError, parse_settings
    from tests.support.pulumi_program import wire_config

    args, path = stack_arguments("make cost", __doc__.split("\n\n")[0], argv)
    try:
        config, encrypted = readable(stack_file_config(path))
        settings = parse_settings(wire_config(config), frozenset(encrypted))
        if settings.platform != "aws":
            raise ValueError(f"{args.stack} runs on your own Docker engine: it costs no AWS money")
        print(table(args.stack, settings))
    except (ValueError, SettingsError) as exc:
        print(f"cost: {args.stack}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
