"""Tests of YesWorkflow: annotations, model, facts, graphs, queries and recon."""
