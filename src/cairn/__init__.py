"""cairn: a self-hosted research data platform.

Upload, process, archive and trace every file. See docs/architecture.md for the map.
"""

__version__ = "0.1.0"
