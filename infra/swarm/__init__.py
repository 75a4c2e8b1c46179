"""The swarm on AWS: node groups, the state the node agents share, their permissions, cloud-init."""
