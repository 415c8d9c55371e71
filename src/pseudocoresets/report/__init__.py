"""Tables, figures and the HTML page of a run, built from its artifacts alone."""

from .results import collect_results, markdown_table, write_report

__all__ = ["collect_results", "markdown_table", "write_report"]
