"""The replicated service on a swarm, through the docker provider."""
