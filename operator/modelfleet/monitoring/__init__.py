"""What to watch: the Grafana dashboard, the alert rules, the fleet gauges and `modelfleet status`."""
