"""Allocation of nodes to capacity contracts over time: the pure allocator, healing and occupancy."""
