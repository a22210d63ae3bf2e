"""Triggers on the management API. The views' ``change_check`` and ``remove_check`` are the
campaigns app's to fill (it knows the campaigns a trigger feeds): ``campaigns.mgmt`` subclasses
them and wires the URLs, as its Pilot page does with ``TriggerAdmin``."""
