"""Provenance: recorded runs of scripts and programs, their files, lineage queries, exports.

    run_id = cairn.provenance.record("analysis.py", "--year", "2026", tag="v1")
    with cairn.provenance.recording(tag="notebook"):
        ...

RunManager's names (record, start_record / end_record, list_runs, view_runs, delete_runs,
trace_runs, checkout, export_file_records) work on the local store by default (docs/provenance.md).
"""

from cairn.provenance.recording import (
    RecordResult,
    RunStore,
    end_record,
    record,
    recording,
    start_record,
)

__all__ = ["RecordResult", "RunStore", "end_record", "record", "recording", "start_record"]
