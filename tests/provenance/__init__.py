"""Tests of the provenance area."""
