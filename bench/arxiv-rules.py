"""Benchmark arXiv's rule set against cairn's general rules on the same paper-shaped upload.

``process_upload`` (in-process, no server, no database) unpacks one ``.tar.gz`` of 2,000 files
(the most an arXiv target takes) shaped like a big submission: TeX sources and style files with
CR LF line ends, figures as EPS (half with previews to cut), PNG and PDF, and TeX output beside
its source (removed when the upload is merged, so not timed here). cairn is the upload on the
``arxiv`` target (every rule of docs/arxiv-rules.md: renames, text repair, PostScript clean-up
...); the baseline is the same upload on the ``default`` target, measured in the same run. The
ratio is the cost of the rules. Seconds are CPU seconds of the process (all its threads): on a
machine shared with other jobs, wall time swung 2x between rounds; CPU time is the work done.
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import tarfile
import time
from pathlib import Path

import _common
from _common import MIB, best_alternating, detail, report, scratch_dir

_common.use_source_tree()

from cairn.workspaces._limits import limits_for  # noqa: E402
from cairn.workspaces._unpack import process_upload  # noqa: E402


def make_archive(path: Path, *, files: int) -> None:
    rng = random.Random(13)
    words = [b"alpha", b"beta", b"\\emph{gamma}", b"$x^2$", b"theorem", b"proof", b"lemma"]
    preview = b"%%BeginPreview: 80 80 1 80\n% " + b"ff" * 40 + b"\n%%EndPreview\n"
    with tarfile.open(path, "w:gz", compresslevel=6) as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"paper/{name}")
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))

        for i in range(files):
            kind = i % 5
            if kind == 0:  # a TeX section with CR LF line ends, ~20 KiB
                lines = (b" ".join(rng.choice(words) for _ in range(12)) for _ in range(300))
                body = b"\\section{S}\r\n" + b"\r\n".join(lines) + b"\r\n"
                add(f"sec/s{i:05d}.tex", body)
            elif kind == 1:  # an EPS figure, every other one with a preview
                body = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 80 80\n"
                body += (preview * 40 if i % 2 else b"") + b"newpath 0 0 moveto\n" * 500
                add(f"fig/f{i:05d}.eps", body + b"showpage\n%%EOF\n")
            elif kind == 2:  # a PNG figure (incompressible)
                add(f"fig/p{i:05d}.png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(30_000))
            elif kind == 3:  # a PDF figure
                add(f"fig/d{i:05d}.pdf", b"%PDF-1.5\n" + rng.randbytes(20_000) + b"\n%%EOF\n")
            else:  # TeX output next to a source, and bibliographies
                add(f"sec/s{i - 4:05d}.aux", b"\\relax\n" * 200)
        add("main.tex", b"\\documentclass{article}\n\\begin{document}\n\\end{document}\n")
        add("refs.bbl", b"\\begin{thebibliography}{1}\n\\end{thebibliography}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1_990, help="number of files")
    parser.add_argument("--rounds", type=int, default=3, help="runs per side (best is kept)")
    args = parser.parse_args()
    with scratch_dir() as tmp:
        archive = tmp / "paper.tar.gz"
        make_archive(archive, files=args.files)
        detail(f"{args.files} files, {archive.stat().st_size / MIB:.0f} MiB compressed")

        def measure(target: str) -> float:
            staging = tmp / "staging"
            shutil.rmtree(staging, ignore_errors=True)
            limits = limits_for(target)
            start, wall = time.process_time(), time.perf_counter()
            result = process_upload(archive, "paper.tar.gz", staging=staging, limits=limits)
            seconds = time.process_time() - start
            detail(f"{target}: {seconds:.2f} s CPU, {time.perf_counter() - wall:.2f} s wall")
            assert not result.fatal, result.findings[:3]
            return seconds

        cairn, baseline = best_alternating(
            lambda: measure("arxiv"), lambda: measure("default"), rounds=args.rounds
        )
    report("arxiv-rules", cairn, baseline)


if __name__ == "__main__":
    main()
