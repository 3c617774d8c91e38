"""Economics of a compute-leasing business: scenario files, projections, funding routes, Monte Carlo.

Kept free of imports so that the CLI, which loads every domain at start, does not pay for numpy and
pydantic models until a ``scenario`` command runs.
"""
