"""Configuration as code: a partnership's configuration (settings, triggers, campaigns, webhook
endpoints; never keys or secrets) as one YAML or JSON document, exported, planned and applied.

- ``document``: the format (its JSON Schema, parsing YAML or JSON, dumping), values canonical.
- ``state``: the configuration as it is (the export) and its fingerprint.
- ``plan``: the difference between a document and the state, object by object.
- ``services``: plan and apply, in one transaction under the partnership's configuration
  lock, through the services Pilot calls (``campaign_save``, ``campaigns.lifecycle``, ...).
"""
