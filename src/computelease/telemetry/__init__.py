"""Telemetry: GPU and node health from agent heartbeats."""
