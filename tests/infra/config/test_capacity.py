"""infra/config/capacity.py: which types may share a group, what a group of them buys."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import moto.ec2
import pytest

from infra.config.capacity import (
    ami_architecture,
    ami_for,
    architecture,
    image_platforms,
    node_platforms,
    on_demand_count,
    runs_spot,
    type_problems,
    uses_mixed_instances,
)
from infra.config.settings import ec2_instance_types, parse_settings

pytestmark = pytest.mark.unit

INSTANCE_TYPES = "resources/instance_types.json.gz"


@pytest.mark.parametrize(
    "instance_type,expected",
    [
        ("t4g.small", "arm64"),
        ("m7g.large", "arm64"),
        ("c7gn.xlarge", "arm64"),
        ("r8gd.large", "arm64"),
        ("x2gd.large", "arm64"),
        ("im4gn.large", "arm64"),
        ("is4gen.large", "arm64"),
        ("g5g.xlarge", "arm64"),
        ("hpc7g.4xlarge", "arm64"),
        ("a1.medium", "arm64"),
        ("t3.small", "x86_64"),
        ("t3a.medium", "x86_64"),
        ("m7i.large", "x86_64"),
        ("c6in.large", "x86_64"),
        ("g4dn.xlarge", "x86_64"),  # a GPU family: its g comes first
        ("m5dn.large", "x86_64"),
        ("u-6tb1.metal", "x86_64"),
    ],
)
def test_the_architecture_follows_the_family(instance_type, expected):
    assert instance_type in ec2_instance_types()
    assert architecture(instance_type) == expected


def test_the_architecture_is_the_one_ec2_describes_for_every_type():
    """Against DescribeInstanceTypes' ProcessorInfo.SupportedArchitectures (moto's copy of it), for
    every type botocore lists and moto describes; Mac types (macOS only) are refused as node types."""
    described = json.loads(gzip.decompress((Path(moto.ec2.__file__).parent / INSTANCE_TYPES).read_bytes()))
    listed = [t for t in ec2_instance_types() if t in described and not t.startswith("mac")]
    assert len(listed) > 900
    assert [
        (t, described[t]["ProcessorInfo"]["SupportedArchitectures"])
        for t in listed
        if architecture(t) not in described[t]["ProcessorInfo"]["SupportedArchitectures"]
    ] == []


def test_extra_types_are_of_the_size_and_architecture_each_once():
    assert type_problems("t3.medium", ["t3a.medium", "t2.medium"], primary_setting="p", more_setting="m") == []
    assert type_problems(
        "t3.medium", ["m5.large", "t4g.medium", "t3.medium"], primary_setting="p", more_setting="m"
    ) == [
        "m: m5.large is not the size of p t3.medium (medium): the group counts instances, every type must be one size",
        "m: t4g.medium is arm64, p t3.medium is x86_64: the nodes' one AMI serves one architecture",
        "m lists t3.medium twice (with p, each type once)",
    ]


def test_a_group_mixes_only_when_asked_and_runs_spot_only_above_its_base():
    assert not uses_mixed_instances([], 100)
    assert uses_mixed_instances(["t3a.small"], 100) and uses_mixed_instances([], 0)
    assert runs_spot(3, 1, 0) and runs_spot(2, 0, 50)
    assert not runs_spot(3, 3, 0) and not runs_spot(3, 0, 100) and not runs_spot(0, 0, 0)
    assert not runs_spot(1, 0, 50)  # half of one instance rounds to one on-demand


@pytest.mark.parametrize(
    "count,base,percent,expected",
    [(3, 1, 0, 1), (3, 0, 0, 0), (5, 1, 50, 3), (4, 0, 30, 2), (3, 5, 0, 3), (0, 0, 0, 0), (6, 2, 100, 6)],
)
def test_on_demand_is_the_base_then_the_share_rounded_up(count, base, percent, expected):
    assert on_demand_count(count, base, percent) == expected


def test_an_amazon_image_name_says_its_architecture_and_an_id_nothing():
    assert ami_architecture("al2023-ami-2023.9.20251208.0-kernel-6.1-x86_64") == "x86_64"
    assert ami_architecture("al2023-ami-2023.9.20251208.0-kernel-6.1-arm64") == "arm64"
    assert ami_architecture("ami-0123456789abcdef0") is None


def test_a_release_name_gives_each_architecture_its_image_and_an_id_is_one_image():
    release = "al2023-ami-2023.9.20251208.0-kernel-6.1-"
    assert ami_for(release + "x86_64", "arm64") == release + "arm64"
    assert ami_for(release + "arm64", "x86_64") == release + "x86_64"
    assert ami_for(release + "x86_64", "x86_64") == release + "x86_64"
    assert ami_for("ami-0123456789abcdef0", "arm64") == "ami-0123456789abcdef0"
    assert ami_for("my-golden-image", "arm64") == "my-golden-image"


def test_images_are_built_for_every_platform_the_nodes_run():
    assert node_platforms(["t3.small", "t3.medium"]) == ["linux/amd64"]
    assert node_platforms(["t4g.small", "m7g.large"]) == ["linux/arm64"]
    assert node_platforms(["t4g.small", "t3.small"]) == ["linux/amd64", "linux/arm64"]

    def stack(platform, image_platform=None, manager="t3.small", worker="t3.small"):
        return SimpleNamespace(
            platform=platform, image_platform=image_platform, manager_instance_type=manager, worker_instance_type=worker
        )

    assert image_platforms(stack("aws", worker="t4g.medium")) == ["linux/amd64", "linux/arm64"]
    assert image_platforms(stack("aws", "linux/amd64")) == ["linux/amd64"]
    # Locally: what imagePlatform says, else the engine's own (the node types are the cloud's).
    assert image_platforms(stack("local", worker="t4g.medium")) == []
    assert image_platforms(stack("local", "linux/arm64")) == ["linux/arm64"]


def test_groups_of_two_architectures_need_a_release_name_and_no_other_platform():
    from tests.infra.config.test_compose import settings_error
    from tests.support.pulumi_program import stack_config

    config = {
        **stack_config("prod"),
        "restdemo:workerInstanceType": "t4g.medium",
        "restdemo:workerInstanceTypes": [],
        "restdemo:imagePlatform": "linux/amd64",
    }
    assert [line.strip() for line in settings_error({**config, "restdemo:nodeAmi": "ami-0123456789abcdef0"})] == [
        "restdemo:nodeAmi ami-0123456789abcdef0 is one image of one architecture, but restdemo:managerInstanceType "
        "t3.small is x86_64 and restdemo:workerInstanceType t4g.medium is arm64: name an Amazon Linux release "
        "(al2023-ami-...-x86_64), whose image of each architecture each group takes, or give both groups one "
        "architecture",
        "restdemo:imagePlatform linux/amd64: the nodes run linux/amd64 and linux/arm64 (restdemo:managerInstanceType "
        "t3.small is x86_64 and restdemo:workerInstanceType t4g.medium is arm64); leave it unset on AWS stacks, "
        "where the images are built for every platform the nodes run",
    ]
    del config["restdemo:imagePlatform"]
    assert parse_settings(config, frozenset()).worker_instance_type == "t4g.medium"
    assert [line.strip() for line in settings_error({**config, "restdemo:workerInstanceType": "mac2.metal"})] == [
        'restdemo:workerInstanceType = "mac2.metal": is a Mac instance: it runs macOS on a dedicated host, not '
        "Amazon Linux"
    ]


def test_every_capacity_mistake_is_one_line_before_anything_is_made():
    from tests.infra.config.test_compose import settings_error
    from tests.support.pulumi_program import stack_config

    config = {
        **stack_config("prod"),
        "restdemo:workerInstanceTypes": ["t3a.medium", "t3.mediun", "m5.large"],
        "restdemo:workerOnDemandBase": 4,
        "restdemo:managerInstanceType": "t4g.small",
        "restdemo:imagePlatform": "linux/amd64",
    }
    assert [line.strip() for line in settings_error(config)] == [
        'restdemo:workerInstanceTypes[1] = "t3.mediun": is not an EC2 instance type; did you mean t3.medium? '
        "(the types botocore's EC2 model lists)",
        "restdemo:workerOnDemandBase (4) is more than restdemo:workerCount (3): at most every worker is on-demand",
        "restdemo:imagePlatform linux/amd64: the nodes run linux/amd64 and linux/arm64 (restdemo:managerInstanceType "
        "t4g.small is arm64 and restdemo:workerInstanceType t3.medium is x86_64); leave it unset on AWS stacks, "
        "where the images are built for every platform the nodes run",
    ]
    config["restdemo:workerInstanceTypes"] = ["t3a.medium", "m5.large"]
    assert [line.strip() for line in settings_error(config)][0] == (
        "restdemo:workerInstanceTypes: m5.large is not the size of restdemo:workerInstanceType t3.medium (medium): "
        "the group counts instances, every type must be one size"
    )


def test_a_maximum_of_workers_is_above_their_count_or_none():
    from tests.infra.config.test_compose import settings_error
    from tests.support.pulumi_program import stack_config

    assert [line.strip() for line in settings_error({**stack_config("prod"), "restdemo:workerMaxCount": 3})] == [
        "restdemo:workerMaxCount (3) must be more than restdemo:workerCount (3), the fewest workers the group "
        "keeps; 0 for a fixed count"
    ]
    problems = settings_error(
        {**stack_config("prod"), "restdemo:workerMaxCount": 6, "restdemo:workerReservedTarget": 95}
    )
    assert [line.strip() for line in problems] == ["restdemo:workerReservedTarget = 95: must be at most 90"]
