"""YesWorkflow (prospective provenance): annotations in script comments become a workflow
model, YW 0.2 Prolog facts, Graphviz graphs, lineage queries and, with a run's file list,
recon facts and hybrid graphs."""

from cairn.provenance.yw.annotations import (
    Annotation,
    AnnotationError,
    Extraction,
    Source,
    extract_files,
    extract_text,
)
from cairn.provenance.yw.comments import LANGUAGES, UnknownLanguage, language_for, scan_comments
from cairn.provenance.yw.facts import extract_facts, model_facts, write_facts
from cairn.provenance.yw.model import Model, build_model, load_model
from cairn.provenance.yw.templates import LogTemplate, UriTemplate

__all__ = [
    "LANGUAGES",
    "Annotation",
    "AnnotationError",
    "Extraction",
    "LogTemplate",
    "Model",
    "Source",
    "UnknownLanguage",
    "UriTemplate",
    "build_model",
    "extract_facts",
    "extract_files",
    "extract_text",
    "language_for",
    "load_model",
    "model_facts",
    "scan_comments",
    "write_facts",
]
