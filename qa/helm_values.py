"""Check hub/kubernetes/values.yaml against the zero-to-jupyterhub chart's values schema, as Helm would.

    .venv/bin/python -m qa.helm_values PATH/TO/zero-to-jupyterhub-k8s

Helm validates the chart's defaults merged with the given values: so does this (the chart's ``jupyterhub/values.yaml``
and ``jupyterhub/values.schema.yaml`` from a checkout of https://github.com/jupyterhub/zero-to-jupyterhub-k8s; the
chart itself is not downloaded here). Exits 1 with the first error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jsonschema
import yaml

VALUES = Path(__file__).resolve().parent.parent / "hub" / "kubernetes" / "values.yaml"


def merged(defaults: dict, ours: dict) -> dict:
    """Helm's merge of values: mappings key by key, anything else replaced."""
    out = dict(defaults)
    for key, value in ours.items():
        out[key] = merged(defaults[key], value) if isinstance(value, dict) and isinstance(defaults.get(key), dict) \
            else value
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    chart = Path(argv[0]) / "jupyterhub"
    schema = yaml.safe_load((chart / "values.schema.yaml").read_text())
    values = merged(yaml.safe_load((chart / "values.yaml").read_text()), yaml.safe_load(VALUES.read_text()))
    try:
        jsonschema.validate(values, schema)
    except jsonschema.ValidationError as e:
        print(f"{VALUES}: {e.message} at {'/'.join(map(str, e.absolute_path))}", file=sys.stderr)
        return 1
    print(f"{VALUES}: valid against {chart / 'values.schema.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
