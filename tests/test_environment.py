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


def _lock() -> dict[str, list[tuple[str, str]]]:
    """requirements.lock: name -> [(version, environment marker)], one entry per marker fork."""
    entries: dict[str, list[tuple[str, str]]] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)(?:\s*;\s*(.+))?", line.strip())
        if m:
            entries.setdefault(m[1].lower().replace("_", "-"), []).append((m[2], m[3] or ""))
    return entries


def test_every_requirement_is_pinned_and_the_lock_agrees():
    lock = _lock()
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            assert not line or "==" in line, f"{name}: {line!r} is not pinned"
        for package, version in _pins((ROOT / name).read_text().splitlines()).items():
            if package == "torch":
                continue
            assert lock.get(package) == [(version, "")], (
                f"{package}: {name} pins {version}, requirements.lock has {lock.get(package)}: run `make lock`")


def test_the_lock_is_universal_and_leaves_torch_to_each_platform():
    lock = _lock()
    header = (ROOT / "requirements.lock").read_text().split("\n", 3)[:3]
    assert "--universal" in header[1] and "--python-version 3.11" in header[1], header
    gpu = [p for p in lock if p in ("torch", "triton") or p.startswith(("nvidia-", "cuda-"))]
    assert not gpu, f"requirements.lock must leave torch and its GPU libraries to each platform: {gpu}"
    # one version for Python < 3.11.5 (Debian 12's 3.11.2) and one after: soupsieve 4 needs 3.11.5
    assert [m for _, m in lock["soupsieve"]] == ["python_full_version < '3.11.5'", "python_full_version >= '3.11.5'"]
    for package, forks in lock.items():
        assert len(forks) == 1 or all(m for _, m in forks), f"{package}: a fork without a marker {forks}"


def test_environment_yml_is_pinned_for_one_python():
    """conda can't carry per-Python markers: environment.yml pins Python 3.11 and says so."""
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*- python=3\.11\s*$", text, re.MULTILINE)
    assert "3.11" in text.split("name:")[0], "environment.yml should say which Python it is pinned for"


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
