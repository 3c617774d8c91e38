"""Who is calling: API tokens, web users, roles, and the scoping every query applies."""
