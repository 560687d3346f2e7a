"""What operators watch the app with: the Prometheus metrics at `/metrics`."""
