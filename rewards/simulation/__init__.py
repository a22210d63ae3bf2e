"""Campaigns judged without issuing: the dry run and the backtest, on the workers' decision code."""
