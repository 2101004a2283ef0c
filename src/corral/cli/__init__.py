"""The `corral` command line: a thin face over the same services the API uses."""
