"""The `cairn` command line (Typer + rich)."""
