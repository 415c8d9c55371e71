"""Every figure with three or more decimals on the README and on a documentation page (the docs, and the
experiments', benchmarks' and checks' READMEs the site includes) appears in a committed results file, rounded as
the page shows it, or among the paper's published numbers (docs/results/paper_table1.json); arXiv identifiers
are not figures. So a page cannot drift from the results it reports."""

import bisect
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ("experiments/*/results/**/*", "benchmarks/results/**/*", "checks/results/**/*")
SUFFIXES = {".json", ".md", ".csv", ".log", ".txt", ".jsonl"}
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:[eE][-+]?\d+)?")
FIGURE = re.compile(r"(?<![\w.])(-?\d+\.(\d{3,}))(?!\d)")
NOT_FIGURES = re.compile(r"arXiv[: ]+$|arxiv\.org/abs/$", re.IGNORECASE)


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found += sorted(ROOT.glob("experiments/*/README.md")) + [ROOT / "benchmarks/README.md", ROOT / "checks/README.md"]
    return found


def recorded_values() -> list[float]:
    files = [p for pattern in RESULTS for p in ROOT.glob(pattern) if p.is_file() and p.suffix in SUFFIXES]
    files.append(ROOT / "docs/results/paper_table1.json")
    values = set()
    for path in files:
        for match in NUMBER.finditer(path.read_text(errors="replace")):
            try:
                values.add(float(match.group()))
            except ValueError:
                pass
    return sorted(values)


def recorded(text: str, values: list[float]) -> bool:
    """Whether a recorded value rounds to ``text`` (at its number of decimals)."""
    value, half = float(text), 0.5 * 10 ** -len(text.split(".")[1]) * (1 + 1e-9)
    i = bisect.bisect_left(values, value - half)
    return i < len(values) and values[i] <= value + half


def unrecorded(path: Path, values: list[float]) -> list[str]:
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        for match in FIGURE.finditer(line):
            if NOT_FIGURES.search(line[: match.start()]) or recorded(match.group(1), values):
                continue
            out.append(f"{path.relative_to(ROOT)}:{number}: {match.group(1)}")
    return out


def test_every_figure_on_a_page_is_in_a_results_file():
    values = recorded_values()
    missing = [entry for page in pages() for entry in unrecorded(page, values)]
    assert not missing, "figures on pages with no committed results file behind them:\n" + "\n".join(missing)


def test_the_check_sees_a_figure_that_no_results_file_holds(tmp_path):
    values = recorded_values()
    page = ROOT / "docs" / "a_page_for_the_check.md"
    try:
        page.write_text("accuracy 0.123456789 on the test set; VBPC, arXiv 2502.21143\n")
        assert unrecorded(page, values) == ["docs/a_page_for_the_check.md:1: 0.123456789"]
    finally:
        page.unlink()
    assert recorded("0.742", values) and recorded("0.4294", values)  # settle_budget's 0.7422; the paper's fKL
