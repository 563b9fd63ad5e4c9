"""docs/configuration.md is generated from the config schema (tools/config_docs.py) and must stay current."""

from pathlib import Path

import yaml

from conftest import load_tool

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "toposdf" / "schemas" / "config.schema.yaml"


def _config_docs():
    return load_tool("config_docs")


def _leaves_with_defaults(node: dict, key: str = "") -> list[str]:
    """Dotted keys of the schema's leaves that have a default; ``<name>`` for an entry of a block of named entries."""
    if "properties" not in node and not isinstance(node.get("additionalProperties"), dict):
        return [key] if "default" in node else []
    out = []
    for name, sub in node.get("properties", {}).items():
        out += _leaves_with_defaults(sub, f"{key}.{name}".lstrip("."))
    if isinstance(node.get("additionalProperties"), dict) and "properties" not in node:
        out += _leaves_with_defaults(node["additionalProperties"], f"{key}.<name>")
    return out


def test_the_committed_page_is_what_the_schema_gives():
    docs = _config_docs()
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == docs.generate(docs.load_schema(SCHEMA)), (
        "docs/configuration.md is out of date with toposdf/schemas/config.schema.yaml; "
        "regenerate it with: python tools/config_docs.py")


def test_every_leaf_with_a_default_is_on_the_page():
    docs = _config_docs()
    schema = yaml.safe_load(SCHEMA.read_text())
    page = docs.generate(schema)
    keys = _leaves_with_defaults(schema)
    assert {"dataset.test_fraction", "methods.<name>.lambda_smooth", "methods.<name>.prior.i0"} <= set(keys)
    missing = [k for k in keys if f"| `{k}` |" not in page]
    assert not missing, f"schema keys with a default that docs/configuration.md does not list: {missing}"
