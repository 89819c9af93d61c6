"""Request bodies of the native processing API (``/api/v1/processing``).

Answers are the same resource records the Fusion contract shows (see
``cairn.api.compat.fusion.records``), so cairn's SDK offers the Fusion manual's object model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cairn.processing.service import ProcessChanges

__all__ = [
    "DataCreate",
    "DispatcherChoice",
    "ExpiryChange",
    "FileCreate",
    "NameChange",
    "ProcessCreate",
    "ProcessUpdate",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataCreate(_Body):
    name: str = Field(max_length=500, description="The data item's name.")


class NameChange(_Body):
    name: str = Field(max_length=500, description="The new name (or the copy's name).")


class FileCreate(_Body):
    name: str = Field(max_length=500, description="The file's name, without a folder.")
    file_type: str = Field(max_length=40, description="GeoJSON, GeoTIFF, CSV ... (one per item).")


class DispatcherChoice(_Body):
    """One dispatcher a process adds (see `services/dispatchers`)."""

    ssd_id: str | None = Field(None, max_length=64, description="The dispatcher's ssd_id.")
    name: str | None = Field(None, max_length=200, description="Or its name.")
    dispatch_intermediate: bool = Field(False, description="Every component's outputs too.")
    options: dict[str, Any] = Field(default_factory=dict, description="Option name to value.")


class ProcessUpdate(_Body):
    """What may change: anything before the first execution, only name and schedule after."""

    name: str | None = Field(None, max_length=500)
    options: dict[str, Any] | None = Field(None, description="Option name to value.")
    inputs: dict[int, str | None] | None = Field(None, description="Input number to data id.")
    run_type: str | None = Field(
        None, max_length=40, description="'run_once' (now or at repeat_start) or 'run_schedule'."
    )
    output_storage_period: int | None = Field(None, description="Days outputs are kept.")
    repeat_count: int | None = Field(None, description="Runs of a schedule (0: no limit).")
    repeat_start: datetime | None = Field(None, description="The first run (ISO 8601).")
    repeat_end: datetime | None = Field(None, description="No run after this (ISO 8601).")
    repeat_gap: dict[str, int] | str | None = Field(
        None, description='Between runs, e.g. {"days": 1} (years, months, weeks ... seconds).'
    )
    repeat_offset: dict[str, int] | str | int | None = Field(
        None, description='After repeat_start, the first run: {"hours": 2} or seconds.'
    )
    cron: str | None = Field(
        None, max_length=200, description="Instead of repeat_gap: a cron expression (UTC)."
    )
    dispatchers: list[DispatcherChoice] | None = Field(
        None, description="The dispatchers, in order (replaces the list)."
    )

    def changes(self) -> ProcessChanges:
        return ProcessChanges(
            name=self.name,
            options=self.options,
            inputs=self.inputs,
            run_type=self.run_type,
            output_storage_period=self.output_storage_period,
            repeat_count=self.repeat_count,
            repeat_start=self.repeat_start,
            repeat_end=self.repeat_end,
            repeat_gap=self.repeat_gap,
            repeat_offset=self.repeat_offset,
            cron=self.cron,
            dispatchers=None
            if self.dispatchers is None
            else [d.model_dump(exclude_none=True) for d in self.dispatchers],
        )


class ProcessCreate(ProcessUpdate):
    service_id: str = Field(max_length=64, description="The service version to run.")
    name: str = Field(max_length=500)


class ExpiryChange(_Body):
    delete_expiry: datetime = Field(description="Keep the outputs until then (ISO 8601).")
