"""scripts/cost.py: `make cost STACK=...`, the month's cost of a stack from its settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from infra.config.settings import parse_settings
from tests.support.pulumi_program import REPO, stack_config, wire_config

pytestmark = pytest.mark.unit
sys.path.insert(0, str(REPO / "scripts"))

from cost import HOURS, PRICES, levers, main, other_costs  # noqa: E402


def settings_of(stack: str, **changes):
    return parse_settings(wire_config({**stack_config(stack), **changes}))


def test_prod_as_shipped_is_its_on_demand_managers_one_on_demand_worker_and_two_spot():
    baseline, shipped, arm = levers(settings_of("prod"))
    assert baseline.compute == pytest.approx((3 * 0.0228 + 3 * 0.0456) * HOURS)
    spot = (0.0142 + 0.0135) / 2 * HOURS  # the mean of the two listed types' pools
    assert (shipped.managers, shipped.workers) == pytest.approx((3 * 0.0228 * HOURS, 0.0456 * HOURS + 2 * spot))
    assert arm.managers == pytest.approx(3 * 0.0184 * HOURS)
    assert arm.workers == pytest.approx(0.0368 * HOURS + 2 * 0.0116 * HOURS)  # t4g.medium, one pool


def test_a_stack_without_spot_costs_its_on_demand_price():
    baseline, shipped, _ = levers(settings_of("dev", **{"restdemo:workerOnDemandPercent": 100}))
    assert shipped.compute == pytest.approx(baseline.compute) == pytest.approx(2 * 0.0228 * HOURS)


def test_the_rest_is_disks_load_balancers_nat_and_addresses():
    dev, prod = settings_of("dev"), settings_of("prod")
    # dev: 2 public nodes of 20 GB, 2 zones; prod: 6 private nodes of 30 GB, 3 zones, 3 NAT gateways.
    assert other_costs(dev) == pytest.approx(40 * 0.088 + (2 * 0.0252 + (2 + 4) * 0.005) * HOURS)
    assert other_costs(prod) == pytest.approx(180 * 0.088 + (2 * 0.0252 + 3 * 0.048 + (6 + 3) * 0.005) * HOURS)


def test_make_cost_prints_the_table_and_a_problem_in_one_line(capsys):
    assert main(["prod"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "prod: 3 managers (t3.small, on-demand), 3 workers (1 on-demand, 2 spot; t3.medium, t3a.medium)"
    )
    assert "| all on-demand, x86 | $50 | $100 | $150 | 100% | $191 | $340 |" in out
    assert "| as shipped | $50 | $54 | $103 | 69% | $191 | $294 |" in out
    assert main(["local"]) == 1
    assert capsys.readouterr().err == "cost: local: local runs on your own Docker engine: it costs no AWS money\n"


def test_a_type_without_a_price_is_named(tmp_path):
    stack = tmp_path / "Pulumi.big.yaml"
    stack.write_text((REPO / "stacks" / "Pulumi.prod.yaml").read_text().replace("t3.medium", "m7i.large"))
    stack.write_text(stack.read_text().replace("- t3a.medium", "- m7a.large"))
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "cost.py"), "big", "--file", str(stack)], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert (
        done.stderr == "cost: big: no price for m7i.large here; add it to PRICES in scripts/cost.py from AWS's pages\n"
    )
    assert "m7i.large" not in PRICES
