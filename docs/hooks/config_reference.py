"""mkdocs hook: the configuration and command-line reference, generated from the code at build time.

A page that holds one of these placeholders gets it replaced by a table (nothing generated is committed, so the
reference cannot drift from the dataclasses):

- ``<!-- config-reference -->``: one table per config section of :func:`pseudocoresets.config.sections` (the stages'
  sections, one per evaluation protocol, then one per registered objective), with the option's flag, type, default
  (without a preset) and the ``help`` of the dataclass field's metadata;
- ``<!-- renamed-options -->``: the earlier option names still accepted and the options each of them sets
  (:func:`pseudocoresets.config.renamed_options`);
- ``<!-- cli-commands -->``: the ``bpc`` subcommands with their descriptions (:data:`pseudocoresets.cli.DESCRIPTIONS`);
- ``<!-- cli-options -->``: the options every stage subcommand takes besides the sections' (from the parser of
  ``bpc run``);
- ``<!-- presets -->``: the preset names (:data:`pseudocoresets.config.PRESETS`).
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def _cell(text: object) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _text(text: object) -> str:
    """Plain text (help strings) safe inside a table cell: ``<preset>`` stays text, not an HTML tag."""
    return _cell(html.escape(str(text), quote=False))


def _code(text: object) -> str:
    text = str(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _type_name(t: object) -> str:
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
    else:
        return "(required)"
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    if value == "":
        return '`""`'
    return _code(value)


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n\n")[0].replace("\n", " ")


def config_reference() -> str:
    from pseudocoresets.config import STAGE_SECTIONS, sections
    from pseudocoresets.evaluation.protocols import protocol_sections
    from pseudocoresets.objectives import OBJECTIVES

    protocols = protocol_sections()
    out = []
    for name, cls in sections().items():
        if name in STAGE_SECTIONS:
            kind = "stage section"
        elif name in protocols:
            kind = f"options of the evaluation protocol `{protocols[name].NAME}`"
        else:
            kind = f"options of the objective `{name}`"
        out.append(f"### `{name}`\n")
        summary = _first_line(cls.__doc__)
        if name in OBJECTIVES:
            summary = _first_line(OBJECTIVES[name].__doc__)
        elif name in protocols:
            summary = _first_line(protocols[name].__doc__)
        if summary and not summary.startswith(cls.__name__ + "("):
            out.append(f"{html.escape(summary.replace(' (module docstring)', ''), quote=False)}\n")
        where = f"`{cls.__module__}.{cls.__qualname__}`"
        out.append(f"{kind.capitalize()}: {where}; in YAML `{name}: {{option: value}}`.\n")
        out.append("| option | type | default | help |")
        out.append("|---|---|---|---|")
        for f in dataclasses.fields(cls):
            tname = _type_name(f.type)
            flag = f"--{name}.{f.name}"
            if tname == "bool":
                flag = f"--[no-]{name}.{f.name}"
            out.append(
                f"| {_cell(_code(flag))} | {_cell(_code(tname))} | {_cell(_default(f))} | "
                f"{_text(f.metadata.get('help', ''))} |"
            )
        out.append("")
    return "\n".join(out)


def renamed_options() -> str:
    from pseudocoresets.config import renamed_options

    rows = ["| earlier name | sets now |", "|---|---|"]
    for old, new in sorted(renamed_options().items()):
        rows.append(f"| {_cell(_code('--' + old))} | {', '.join(_cell(_code('--' + n)) for n in new)} |")
    return "\n".join(rows) + "\n"


def cli_commands() -> str:
    from pseudocoresets.cli import DESCRIPTIONS

    rows = ["| command | what it does |", "|---|---|"]
    rows += [f"| `bpc {name}` | {_text(text)} |" for name, text in DESCRIPTIONS.items()]
    return "\n".join(rows) + "\n"


def cli_options() -> str:
    from pseudocoresets.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    run = sub.choices["run"]
    rows = ["| option | help |", "|---|---|"]
    for action in run._actions:
        flags = [s for s in action.option_strings if s.startswith("--")]
        if not flags or any("." in s for s in flags) or action.dest == "help":
            continue
        text = action.help or ""
        if action.choices:
            text += f" (choices: {', '.join(map(str, action.choices))})"
        rows.append(f"| {_cell(_code(', '.join(flags)))} | {_text(text)} |")
    return "\n".join(rows) + "\n"


def presets() -> str:
    from pseudocoresets.config import PRESETS

    return ", ".join(f"`{p}`" for p in PRESETS)


PLACEHOLDERS = {
    "<!-- config-reference -->": config_reference,
    "<!-- renamed-options -->": renamed_options,
    "<!-- cli-commands -->": cli_commands,
    "<!-- cli-options -->": cli_options,
    "<!-- presets -->": presets,
}


def on_page_markdown(markdown: str, page, config, files) -> str:  # the mkdocs hook signature
    for placeholder, make in PLACEHOLDERS.items():
        if placeholder in markdown:
            markdown = markdown.replace(placeholder, make())
    return markdown
