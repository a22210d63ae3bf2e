"""``--expires-in DAYS`` of the commands that issue credentials."""

import argparse

MAX_DAYS = 36_500  # a hundred years: further is "never" (leave the option out)


def expiry_days(value: str) -> int:
    """An argparse type: a whole number of days from 1 to ``MAX_DAYS`` (beyond, the expiry
    date would not exist); the command reports anything else as its usage error."""
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days") from None
    if not 1 <= days <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"from 1 to {MAX_DAYS} days (leave it out for no expiry)")
    return days
