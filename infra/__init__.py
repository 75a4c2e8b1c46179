"""The Pulumi program that takes restdemo from source to a Docker Swarm."""
