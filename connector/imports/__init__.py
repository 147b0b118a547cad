"""The import-profiles goal: S3 files, parsed, converted and applied to profiles; shared by import-groups."""
