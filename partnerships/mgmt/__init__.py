"""The management API's shared parts (``/management/v1/``): staff-token authentication, the
ETag / If-Match contract, pagination, and the partnership and API-key endpoints. Each other
resource's endpoints live in the app that owns it (``triggers.mgmt``, ``campaigns.mgmt``,
``rewards.mgmt``)."""
