"""Provenance: run capture, the run store, YesWorkflow models, hybrid graphs and lineage."""
