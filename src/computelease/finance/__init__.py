"""Lessors, finance leases, credit lines and the pure schedule maths behind them."""
