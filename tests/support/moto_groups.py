"""Auto scaling groups in moto, made as the tests need them: empty, on one launch template."""

from __future__ import annotations


def empty_group(ec2, autoscaling, name: str, **placement) -> str:
    """An empty group launching moto's first Amazon image, in the zones or subnets `placement` names
    (by default the client's region's zone a); returns that image."""
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    if not ec2.describe_launch_templates()["LaunchTemplates"]:
        ec2.create_launch_template(LaunchTemplateName="nodes", LaunchTemplateData={"ImageId": image})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": "nodes"},
        MinSize=0,
        MaxSize=20,
        DesiredCapacity=0,
        **(placement or {"AvailabilityZones": [f"{autoscaling.meta.region_name}a"]}),
    )
    return image
