"""Build backends: ``cmake`` (compile from source) and ``prebuilt`` (pick files from a release)."""
