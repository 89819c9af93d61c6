"""Which inputs of a run each output was derived from, narrowed by the script's YesWorkflow model.

RunManager's rule links every output of a run to every input of it. When the run's script
carries YesWorkflow annotations, the model says more: an output bound (through a port's
``@uri`` template) to a data item derives only from the inputs bound to data items upstream of
it in the workflow, so ``wasDerivedFrom`` no longer claims an output came from an input its
block never reads (issue #14, "unless the YW model says otherwise").

The rule, per output file of a run:

- the script (and any other executed file) stays a source: the output depends on the code;
  for a traced program (`cairn record --syscalls -- Rscript job.R`) the script is the file it
  read that its arguments name;
- an output that no ``@uri`` template matches keeps RunManager's rule (every input);
- an output that matches derives from the read inputs bound to the data items upstream of its
  own (the workflow opened to its deepest level, so a nested step's ports count); a read input
  that no template matches is not among them, since the model says which data the block reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cairn.errors import Invalid

__all__ = ["RunFile", "yw_sources"]


@dataclass(frozen=True)
class RunFile:
    """One edge of a run: its access (read, write, execute), the path and the PROV entity."""

    access: str
    path: str
    entity: str


def yw_sources(
    script: str, text: str, files: Sequence[RunFile], *, base: str | None
) -> dict[str, set[str]] | None:
    """For each output entity the model places, the entities it derives from; ``None`` when the
    script has no usable model (no annotations, or annotations that do not parse: then
    RunManager's rule holds for the whole run).

    ``script`` names the source (its extension picks the comment syntax), ``text`` is the exact
    version the run executed, ``base`` the run's working folder (paths are matched relative to
    it, as YesWorkflow's recon does).
    """
    if "@begin" not in text.lower():  # most scripts: skip the parser altogether
        return None
    from cairn.provenance.yw.annotations import extract_text
    from cairn.provenance.yw.model import build_model
    from cairn.provenance.yw.queries import closure
    from cairn.provenance.yw.recon import FileRecord, reconstruct, relative_path
    from cairn.provenance.yw.view import MAX_DEPTH, build_view

    try:
        model = build_model(extract_text(text, path=script))
        if not model.programs:
            return None
        view = build_view(model, depth=MAX_DEPTH)
    except Invalid:  # malformed annotations (an unknown language too): no narrowing
        return None
    records = [
        FileRecord(f.path, "output" if f.access == "write" else "input")
        for f in files
        if f.access in ("read", "write")
    ]
    recon = reconstruct(model, records, base=base)
    bound: dict[str, set[int]] = {r.path: set(r.data_ids) for r in recon.resources}
    root = Path(base) if base else None

    def key(path: str) -> str:
        return relative_path(path, root)

    nodes_of_data = {d: node.id for node in view.data.values() for d in node.data_ids}
    # the code stays a source: what the run executed, and the annotated script itself (a
    # traced program, e.g. `Rscript job.R`, only reads its script)
    executed = {f.entity for f in files if f.access == "execute" or f.path == script}
    inputs = [(f.entity, bound.get(key(f.path), set())) for f in files if f.access == "read"]
    narrowed: dict[str, set[str]] = {}
    for output in (f for f in files if f.access == "write"):
        own = {nodes_of_data[d] for d in bound.get(key(output.path), ()) if d in nodes_of_data}
        if not own:
            continue  # the model does not place this output: RunManager's rule
        upstream, _ = closure(view, sorted(own), forward=False)
        upstream_data = {d for n in upstream - own for d in view.data[n].data_ids}
        sources = narrowed.setdefault(output.entity, set(executed))
        sources.update(entity for entity, data in inputs if data & upstream_data)
    return narrowed
