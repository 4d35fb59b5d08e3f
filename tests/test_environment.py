"""The set-up is what the README says: pins agree, torch is not forced on Colab, CI runs the README's command."""

import re
import tomllib

from autograder.paths import ROOT


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
        if m:
            pins[m[1].lower()] = m[2]
    return pins


def test_environment_yml_pins_the_same_versions_as_requirements():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert req == env, f"environment.yml and requirements.txt disagree: {set(req.items()) ^ set(env.items())}"
    assert req["torch"] == "2.13.0"


def test_every_requirement_is_pinned_and_consistent_with_constraints():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            assert not line or "==" in line, f"{name}: {line!r} is not pinned"
    constraints = _pins((ROOT / "constraints.txt").read_text().splitlines())
    assert "torch" not in constraints, "constraints.txt must leave torch to requirements.txt (each platform's build)"
    for name, version in _pins((ROOT / "requirements.txt").read_text().splitlines()).items():
        if name in constraints:
            assert constraints[name] == version, f"{name}: requirements {version} vs constraints {constraints[name]}"


def test_helper_package_does_not_pin_or_require_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.lower().startswith("torch")]
    assert project["requires-python"] == ">=3.11"


def test_readme_commands_are_the_ones_ci_and_make_run():
    readme = (ROOT / "README.md").read_text()
    assert "make course" in readme and "make test" in readme
    assert re.search(r"^\s*make test\s*$", (ROOT / ".ci" / "run").read_text(), re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^course:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)
