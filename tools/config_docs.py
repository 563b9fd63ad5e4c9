"""Write ``docs/configuration.md``, the reference of every configuration key, from the config's JSON schema.

The schema (``toposdf/schemas/config.schema.yaml``, the file ``toposdf.config.load_schema`` reads) is the one
place where the keys, their types, defaults, bounds and meanings are written down; the page is generated from it so
that the two cannot drift apart. One section per top-level block, nested blocks as sub-sections, each a table of
its keys. A block of named entries (``geometry``, ``methods``: ``additionalProperties`` or ``patternProperties``)
is documented once, with ``<name>`` standing for the entry's name. ``anyOf``/``oneOf`` alternatives, enums,
constants and local ``$ref``s (``#/$defs/...``) are spelled out in the type and bounds columns.

    python tools/config_docs.py            # rewrite docs/configuration.md
    python tools/config_docs.py --check    # exit 1 if docs/configuration.md is not what the schema gives

``tests/test_config_docs.py`` runs the check in the test suite.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "toposdf" / "schemas" / "config.schema.yaml"
DOC_PATH = ROOT / "docs" / "configuration.md"
ENTRY = "<name>"  # stands for the name of an entry in a block of named entries (methods.<name>.topology)

INTRO = """\
# Configuration reference

<!-- Generated from toposdf/schemas/config.schema.yaml by `python tools/config_docs.py`; do not edit by hand.
     tests/test_config_docs.py fails when this page and the schema differ. -->

The workflow validates its configuration against the JSON schema `toposdf/schemas/config.schema.yaml` when it
starts: an unknown key, a wrong type or a value out of bounds stops it with a message naming the key, and every key
left unset takes the default below. `config.yaml` holds the CPU-sized default run and sets many keys to values
other than the schema's defaults; the presets in `presets/` are overlaid on it
(`snakemake --configfile presets/tiny.yaml`), and `--config`/`--configfile` on the command line override both.
Threads, GPUs and executors are not configured here: they belong to the profiles and the command line.

This page is generated from the schema by `python tools/config_docs.py`; do not edit it by hand. A key written
`methods.<name>.topology` belongs to every entry of a block of named entries (here: each method).
"""


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    """The configuration's JSON schema, as ``toposdf.config.load_schema`` reads it (YAML)."""
    return yaml.safe_load(path.read_text())


def resolve(node: dict, root: dict) -> dict:
    """``node`` with a local ``$ref`` (``#/$defs/name``) replaced by its target, its own keys taking precedence."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = root
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def branches(node: dict, root: dict) -> list[dict]:
    """The alternatives a value may take: the ``anyOf``/``oneOf`` branches, or the node itself."""
    node = resolve(node, root)
    alternatives = node.get("anyOf") or node.get("oneOf")
    return [resolve(b, root) for b in alternatives] if alternatives else [node]


def entry_schema(node: dict, root: dict) -> dict | None:
    """The schema of each named entry of a block (``additionalProperties`` or the one ``patternProperties``)."""
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return resolve(extra, root)
    patterns = node.get("patternProperties") or {}
    return resolve(next(iter(patterns.values())), root) if len(patterns) == 1 else None


def is_block(node: dict, root: dict) -> bool:
    """Whether ``node`` is a block of keys (its own section) rather than a value (a table row)."""
    node = resolve(node, root)
    return "properties" in node or entry_schema(node, root) is not None


def children(key: str, node: dict, root: dict) -> Iterator[tuple[str, dict, bool]]:
    """``(dotted key, schema, required)`` of each key in the block ``node`` at ``key``, in the schema's order."""
    node = resolve(node, root)
    prefix = f"{key}." if key else ""
    for name, sub in node.get("properties", {}).items():
        yield f"{prefix}{name}", resolve(sub, root), name in node.get("required", [])
    entry = entry_schema(node, root)
    if entry is not None and not node.get("properties"):
        yield from children(f"{prefix}{ENTRY}", entry, root)


def value_text(value: Any) -> str:
    """A value as it would be written in the YAML config (``null``, ``true``, ``[0.2, 0.4]``, ``auto``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _kind(node: dict, root: dict) -> str:
    """The type of one branch: ``integer``, ``string or null``, ``array of number``, ``mapping``."""
    if "const" in node or "enum" in node:
        values = [node["const"]] if "const" in node else node["enum"]
        names = dict.fromkeys("null" if v is None else "boolean" if isinstance(v, bool) else
                              "string" if isinstance(v, str) else "number" for v in values)
        return " or ".join(names)
    kinds = node.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    items = resolve(node.get("items", {}), root)
    words = [f"array of {_kind(items, root)}" if k == "array" and items else
             "mapping" if k == "object" else k for k in kinds]
    return " or ".join(words)


def type_text(node: dict, root: dict) -> str:
    """The type column: every branch's type, without repeats."""
    return " or ".join(dict.fromkeys(_kind(b, root) for b in branches(node, root)))


def _bounds(node: dict, root: dict) -> list[str]:
    """The constraints of one branch, each as a short phrase."""
    out = []
    if "const" in node:
        out.append(f"`{value_text(node['const'])}`")
    if "enum" in node:
        out.append("one of " + ", ".join(f"`{value_text(v)}`" for v in node["enum"]))
    for word, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if word in node:
            out.append(f"{sign} {value_text(node[word])}")
    if "pattern" in node:
        out.append(f"matches `{node['pattern']}`")
    low, high = node.get("minItems"), node.get("maxItems")
    if low is not None and low == high:
        out.append(f"exactly {low} items")
    else:
        out += [f"at least {low} item{'s' * (low != 1)}"] if low is not None else []
        out += [f"at most {high} items"] if high is not None else []
    if node.get("uniqueItems"):
        out.append("no repeats")
    if "minProperties" in node:
        out.append(f"at least {node['minProperties']} entr{'y' if node['minProperties'] == 1 else 'ies'}")
    names = node.get("propertyNames", {})
    if "pattern" in names:
        out.append(f"names match `{names['pattern']}`")
    items = _bounds(resolve(node["items"], root), root) if isinstance(node.get("items"), dict) else []
    if items:
        out.append("each " + ", ".join(items))
    return out


def bounds_text(node: dict, root: dict) -> str:
    """The allowed values column: each branch's constraints, branches joined by "or"."""
    phrases = [", ".join(_bounds(b, root)) for b in branches(node, root)]
    return " or ".join(p for p in phrases if p)


def cell(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def row(key: str, node: dict, root: dict, required: bool) -> str:
    """One table row: dotted key | type | default | allowed values/bounds | description."""
    default = f"`{value_text(node['default'])}`" if "default" in node else "required" if required else ""
    columns = [f"`{key}`", type_text(node, root), default, bounds_text(node, root), node.get("description", "")]
    return "| " + " | ".join(cell(c) for c in columns) + " |"


TABLE_HEAD = ["| Key | Type | Default | Allowed values | Description |", "|---|---|---|---|---|"]


def section(key: str, node: dict, root: dict, level: int, required: bool) -> list[str]:
    """The Markdown of the block (or top-level value) at ``key``: heading, description, table, sub-blocks."""
    node = resolve(node, root)
    lines = [f"{'#' * level} `{key}`", ""]
    if not is_block(node, root):
        return lines + TABLE_HEAD + [row(key, node, root, required), ""]
    if node.get("description"):
        lines += [cell(node["description"]), ""]
    entry = entry_schema(node, root)
    if entry is not None and not node.get("properties"):
        lines += _entries_intro(key, node, entry, root)
    leaves = [(k, s, r) for k, s, r in children(key, node, root) if not is_block(s, root)]
    if leaves:
        lines += TABLE_HEAD + [row(k, s, root, r) for k, s, r in leaves] + [""]
    for sub_key, sub, sub_required in children(key, node, root):
        if is_block(sub, root):
            lines += section(sub_key, sub, root, min(level + 1, 6), sub_required)
    return lines


def _entries_intro(key: str, node: dict, entry: dict, root: dict) -> list[str]:
    """What a block of named entries holds: the rule for the names, its default entries, each entry's shape."""
    rules = ", ".join(_bounds(node, root))
    names = node.get("patternProperties") or {}
    if names:
        rules = ", ".join(filter(None, [rules, f"names match `{next(iter(names))}`"]))
    lines = [f"A block of named entries `{key}.{ENTRY}`" + (f" ({rules})" if rules else "") + "."]
    if entry.get("description"):
        lines[0] += " " + cell(entry["description"])
    if "default" in node:
        dumped = yaml.safe_dump({key: node["default"]}, sort_keys=False, default_flow_style=None, width=120)
        lines += ["", "Default (when the config sets none):", "", "```yaml", dumped.rstrip("\n"), "```"]
    return lines + ["", f"Each entry `{key}.{ENTRY}` has these keys:", ""]


def generate(schema: dict) -> str:
    """The whole page for ``schema``: the introduction, then one section per top-level key, in schema order."""
    lines = [INTRO]
    for key, sub, required in children("", schema, schema):
        lines += section(key, sub, schema, 2, required)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the page differs from what the schema gives")
    args = parser.parse_args(argv)
    text = generate(load_schema())
    shown = DOC_PATH.relative_to(ROOT)
    if args.check:
        if DOC_PATH.exists() and DOC_PATH.read_text() == text:
            print(f"{shown} is up to date with {SCHEMA_PATH.relative_to(ROOT)}")
            return 0
        state = "is missing" if not DOC_PATH.exists() else f"differs from what {SCHEMA_PATH.relative_to(ROOT)} gives"
        print(f"{shown} {state}; regenerate it with:\n    python tools/config_docs.py", file=sys.stderr)
        return 1
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(text)
    print(f"wrote {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
