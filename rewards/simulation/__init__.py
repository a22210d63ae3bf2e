"""Simulations of the workers that write nothing: a dry run of one event, a backtest."""
