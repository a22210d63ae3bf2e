"""Reward reports: aggregates kept by the transactions that issue and reverse rewards
(``maintain``), and the reads every page, export and API answer is built from (``selectors``)."""
