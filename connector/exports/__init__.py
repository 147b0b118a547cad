"""The export-profiles goal: a segment's members, in columns, to delimited files in S3."""
