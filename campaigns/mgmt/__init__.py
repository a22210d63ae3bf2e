"""Campaigns on the management API (CRUD, lifecycle actions through ``campaigns.lifecycle``),
and the trigger endpoints with the campaigns' checks (``triggers.mgmt``'s views, subclassed)."""
