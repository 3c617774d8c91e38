"""The fleet: sites and racks, nodes and their GPUs, what they cost, and each node's lifecycle."""
