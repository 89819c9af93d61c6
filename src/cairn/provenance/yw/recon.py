"""Recon: bind a run's concrete files to the workflow's data through the ``@uri`` templates.

The input is the file list of one run as YAML (``inputs:`` / ``outputs:`` lists of paths
relative to the run's base folder, the format RunManager's ``exportFileRecords2Yaml`` and
cairn's ``export_file_records`` write; an entry may also be ``{path: ..., sha256: ...}``).
Each path is matched against every port's template, as YesWorkflow's recon does, so a path
usually binds both a workflow-level and a step-level data item. Files of ports carrying
``@log`` templates are read line by line and their variables bound. The result is written
as ``reconfacts.P`` and drawn as the hybrid graph.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cairn.errors import Invalid
from cairn.provenance.yw.facts import render_facts
from cairn.provenance.yw.graph import Resource
from cairn.provenance.yw.model import LogTemplateDef, Model, Port
from cairn.provenance.yw.templates import UriTemplate, normalise_path
from cairn.provenance.yw.view import View

__all__ = [
    "RECON_FACTS",
    "FileRecord",
    "Recon",
    "hybrid_resources",
    "read_file_records",
    "recon_facts",
    "reconstruct",
    "relative_path",
    "write_recon_facts",
]

RECON_FACTS = "reconfacts.P"
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class FileRecord:
    """One file a run read (``input``) or wrote (``output``)."""

    path: str
    role: str
    sha256: str | None = None


def read_file_records(path: str | Path) -> list[FileRecord]:
    """The files of a run's YAML record list.

    Raises:
        Invalid: the file is unreadable, not YAML, or not ``inputs:``/``outputs:`` lists of
            paths (the message says which entry).
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"{source}: cannot read: {exc}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise Invalid(f"{source}: not valid YAML: {exc}") from exc
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise Invalid(f"{source}: expected a mapping with inputs: and outputs: lists")
    unknown = sorted(str(k) for k in document if k not in ("inputs", "outputs"))
    if unknown:
        raise Invalid(f"{source}: unknown keys {', '.join(unknown)} (only inputs:, outputs:)")
    records: list[FileRecord] = []
    for key, role in (("inputs", "input"), ("outputs", "output")):
        entries = document.get(key) or []
        if not isinstance(entries, list):
            raise Invalid(f"{source}: {key}: must be a list of paths")
        for index, entry in enumerate(entries):
            records.append(_record(entry, role, f"{source}: {key}[{index}]"))
    return records


def _record(entry: Any, role: str, where: str) -> FileRecord:
    if isinstance(entry, str) and entry.strip():
        return FileRecord(entry.strip(), role)
    if isinstance(entry, dict) and isinstance(entry.get("path"), str) and entry["path"].strip():
        sha = entry.get("sha256")
        if sha is not None and not (isinstance(sha, str) and _SHA256.match(sha)):
            raise Invalid(f"{where}: sha256 must be 64 hex digits, quoted")
        return FileRecord(entry["path"].strip(), role, sha.lower() if sha else None)
    raise Invalid(f"{where}: expected a path or {{path: ..., sha256: ...}}")


@dataclass
class ReconResource:
    id: int
    path: str
    roles: set[str]
    sha256: str | None = None
    data_ids: list[int] = field(default_factory=list)


@dataclass
class Recon:
    """What a run's files say about the workflow's data."""

    model: Model
    resources: list[ReconResource] = field(default_factory=list)
    data_resources: list[tuple[int, int]] = field(default_factory=list)
    uri_values: list[tuple[int, int, str]] = field(default_factory=list)
    log_values: list[tuple[int, int, int, str]] = field(default_factory=list)
    unmatched_templates: list[dict[str, str]] = field(default_factory=list)
    unmatched_files: list[str] = field(default_factory=list)
    missing_logs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = self.model.data
        return {
            "resources": [
                {
                    "id": r.id,
                    "path": r.path,
                    "roles": sorted(r.roles),
                    "sha256": r.sha256,
                    "data": [data[d].qualified_name for d in r.data_ids],
                }
                for r in self.resources
            ],
            "uri_variable_values": [
                {"resource": r, "variable": self._uri_name(v), "value": value}
                for r, v, value in self.uri_values
            ],
            "log_entries": len({(r, e) for r, e, _, _ in self.log_values}),
            "unmatched_templates": self.unmatched_templates,
            "unmatched_files": self.unmatched_files,
            "missing_logs": self.missing_logs,
        }

    def _uri_name(self, variable_id: int) -> str:
        return self.model.uri_variables[variable_id - 1].name


def reconstruct(
    model: Model, records: Sequence[FileRecord], *, base: str | Path | None = None
) -> Recon:
    """Match every recorded path against every port's URI template and read ``@log`` files.

    ``base`` is the run's folder: absolute paths under it become relative, log files and
    unhashed files are read from it (when present) to hash them.
    """
    recon = Recon(model)
    root = Path(base) if base is not None else None
    by_path: dict[str, ReconResource] = {}
    for record in records:
        path = relative_path(record.path, root)
        resource = by_path.get(path)
        if resource is None:
            resource = ReconResource(len(by_path) + 1, path, set(), record.sha256)
            by_path[path] = resource
            recon.resources.append(resource)
        resource.roles.add(record.role)
        resource.sha256 = resource.sha256 or record.sha256
    variables_of: dict[int, list[int]] = {}
    for variable in model.uri_variables:
        variables_of.setdefault(variable.port_id, []).append(variable.id)
    logs_of: dict[int, list[LogTemplateDef]] = {}
    for template in model.log_templates:
        logs_of.setdefault(template.port_id, []).append(template)
    matched_ports: set[int] = set()
    log_reads: dict[int, tuple[ReconResource, list[LogTemplateDef]]] = {}
    # ports sharing a template (a workflow's and its step's, a writer's and its readers')
    # are matched once
    by_template: dict[str, list[Port]] = {}
    for port in model.ports.values():
        if port.uri:
            by_template.setdefault(port.uri, []).append(port)
    templates = [(UriTemplate(uri), ports) for uri, ports in by_template.items()]
    for resource in recon.resources:
        for uri, ports in templates:
            bound = uri.match(resource.path, normalised=True)  # _relative normalised it
            if bound is None:
                continue
            for port in ports:
                _bind(recon, resource, port, bound, variables_of)
                matched_ports.add(port.id)
                if port.id in logs_of:
                    _, found = log_reads.setdefault(resource.id, (resource, []))
                    found.extend(logs_of[port.id])
        if not resource.data_ids:
            recon.unmatched_files.append(resource.path)
        if resource.sha256 is None and root is not None:
            resource.sha256 = _hash(root / resource.path)
    for port in model.ports.values():
        if port.uri and port.id not in matched_ports:
            recon.unmatched_templates.append({"port": port.qualified_name, "template": port.uri})
    _read_logs(recon, list(log_reads.values()), root)
    return recon


def _bind(
    recon: Recon,
    resource: ReconResource,
    port: Port,
    bound: dict[str, str],
    variables_of: dict[int, list[int]],
) -> None:
    if port.data_id not in resource.data_ids:
        resource.data_ids.append(port.data_id)
        recon.data_resources.append((port.data_id, resource.id))
    for variable_id in variables_of.get(port.id, []):
        name = recon.model.uri_variables[variable_id - 1].name
        recon.uri_values.append((resource.id, variable_id, bound[name]))


def relative_path(path: str, root: Path | None) -> str:
    """``path`` as recon matches it: relative to ``root`` when under it, normalised."""
    if root is not None and Path(path).is_absolute():
        try:
            return normalise_path(Path(path).relative_to(root).as_posix())
        except ValueError:
            pass
    return normalise_path(path)


def _hash(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_logs(
    recon: Recon, reads: list[tuple[ReconResource, list[LogTemplateDef]]], root: Path | None
) -> None:
    entry = 0
    for resource, templates in reads:
        path = (root or Path.cwd()) / resource.path
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            recon.missing_logs.append(resource.path)
            continue
        for line in lines:
            for template in templates:
                bound = template.compiled.match(line)
                if bound is None:
                    continue
                entry += 1
                for variable_id, name in template.variables:
                    recon.log_values.append((resource.id, entry, variable_id, bound[name]))
                break


def recon_facts(recon: Recon) -> str:
    """``reconfacts.P``: resource/2, data_resource/2, uri_variable_value/3,
    log_variable_value/4."""
    return render_facts(
        [
            ("resource(resource_id, resource_uri)", [(r.id, r.path) for r in recon.resources]),
            ("data_resource(data_id, resource_id)", recon.data_resources),
            (
                "uri_variable_value(resource_id, uri_variable_id, uri_variable_value)",
                recon.uri_values,
            ),
            (
                "log_variable_value(resource_id, log_entry_id, log_variable_id, "
                "log_variable_value)",
                recon.log_values,
            ),
        ]
    )


def write_recon_facts(recon: Recon, directory: str | Path) -> Path:
    """Write ``reconfacts.P`` into ``directory`` (created if missing)."""
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise Invalid(f"{folder}: not a directory") from exc
    except OSError as exc:
        raise Invalid(f"{folder}: cannot create: {exc.strerror or exc}") from exc
    target = folder / RECON_FACTS
    target.write_text(recon_facts(recon), encoding="utf-8")
    return target


def hybrid_resources(recon: Recon, view: View) -> dict[int, list[Resource]]:
    """For each data node of ``view``, the concrete files bound to it (for the hybrid graph)."""
    found: dict[int, list[Resource]] = {}
    for node in view.data.values():
        files = [
            Resource(r.id, r.path, r.sha256)
            for r in recon.resources
            if node.data_ids.intersection(r.data_ids)
        ]
        if files:
            found[node.id] = files
    return found
