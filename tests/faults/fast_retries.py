"""Loaded into the webhook senders of fault tests (``celery worker -I tests.faults.fast_retries``):
the retry schedule's waits, 30 s to 8 h, become a second each, so a receiver down for a few
seconds sees the attempts a real one sees over hours. The same sender, claims and leases."""

from datetime import timedelta

from rewards.webhooks import sending

sending.RETRY_SCHEDULE = [timedelta(seconds=1)] * len(sending.RETRY_SCHEDULE)
