"""Provenance: recorded runs of scripts and programs, their files, lineage queries, exports."""
