"""The import-groups goal: households, companies, accounts and their member profiles."""
