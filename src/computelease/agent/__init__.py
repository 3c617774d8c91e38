"""The node agent: reads GPU telemetry (NVML, or a simulated fleet), spools heartbeats and sends them."""
