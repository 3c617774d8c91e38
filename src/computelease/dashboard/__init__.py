"""What each person sees first: figures gathered from the domains that own them, never stored."""
