"""The columnar import engine: Arrow pieces in, conversions and rules over whole batches."""
