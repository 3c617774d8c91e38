"""Accelerator and server-SKU catalog (shipped data, every figure sourced) and capacity conversion."""
