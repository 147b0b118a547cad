"""connector: sync customer profiles two ways between S3 and a local profile store."""

__version__ = "0.1.0"
