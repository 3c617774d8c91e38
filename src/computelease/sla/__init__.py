"""SLA from delivered compute: availability, credit tiers and evidence, as pure functions."""
