"""Webhook endpoints, dry runs and backtests on the management API."""
