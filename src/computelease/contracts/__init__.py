"""Customers and their capacity contracts."""
