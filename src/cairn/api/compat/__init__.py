"""Compatibility routers: wire contracts of the systems cairn re-creates."""
