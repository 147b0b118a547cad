"""connector: sync customer profiles two ways between S3 and a local profile store."""

from connector.arrow_memory import configure_arrow_memory

configure_arrow_memory()  # before anything loads pyarrow: Arrow reads its pool's settings then

__version__ = "0.1.0"
