"""One module per schema change, oldest first; each also sets ``schema_version``."""
