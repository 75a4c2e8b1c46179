"""The restdemo swarm node agent (docs/ARCHITECTURE.md; its contract with the program: contract.py)."""
