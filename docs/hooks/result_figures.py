"""mkdocs hook: the figures committed beside the results (PNG and SVG under ``experiments/<study>/results/`` and
``benchmarks/results/``) become files of the site, at the place the results pages that include those folders'
READMEs look for them.

``docs/results/experiments/<study>/README.md`` includes ``experiments/<study>/README.md``, so the README's relative
link ``results/figures/x.png`` resolves, on the site, to ``results/experiments/<study>/results/figures/x.png``;
that is where the hook puts ``experiments/<study>/results/figures/x.png`` (the same for ``benchmarks/``). One link
then works both on the repository's web view and on the site, and the figures are never copied into ``docs/``.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {".png", ".svg"}


def _figures():
    for folder in sorted(ROOT.glob("experiments/*/results")) + [ROOT / "benchmarks" / "results"]:
        for path in sorted(folder.rglob("*")):
            if path.suffix in SUFFIXES and path.is_file():
                yield path


def on_files(files, config):
    for path in _figures():
        src_uri = "results/" + path.relative_to(ROOT).as_posix()
        if files.get_file_from_path(src_uri) is None:
            files.append(File.generated(config, src_uri, abs_src_path=str(path)))
    return files
