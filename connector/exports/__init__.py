"""The export-profiles goal: a segment's members, in columns, to delimited files in S3.

`model` is the goal's YAML model, `goal.export_profiles` its runner (named by
`connector.goals.registry`); `columns`, `keys`, `encryption` and `uploads` are
what the runner and the config need from outside, and the private modules
are the runner's stages (see `goal`'s docstring). Nothing is imported here:
`connector.config` imports `exports.model`, and the runner imports the config.
"""
