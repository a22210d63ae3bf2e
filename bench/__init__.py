"""`make bench`: our ingest endpoint against a bare Django view and the naive design, one run."""
