"""The restdemo swarm node agent (see ARCHITECTURE.md, the contract with the program)."""
