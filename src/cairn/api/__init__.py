"""HTTP API: a thin FastAPI layer over the area services."""

from cairn.api.app import create_app

__all__ = ["create_app"]
