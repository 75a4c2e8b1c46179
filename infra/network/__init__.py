"""The VPC (`Network`), security-group helpers and the public load balancer (`LoadBalancer`)."""
