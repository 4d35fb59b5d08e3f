"""The learner's path on Colab, reproduced: a runtime with only what Colab ships that the course needs.

Every test runs twice: with the course's pinned torch, and with the newest torch the registry serves (Colab's next
torch; ``conftest.RUNTIMES``).

A fresh virtual environment gets torch, numpy, matplotlib, scikit-learn and tqdm (plus ipykernel and nbclient, only
to execute notebooks) — no nbgrader, no JupyterLab. The helper package arrives the way a learner gets it: the
notebook's own setup cell pip-installs it, from a wheel built from this checkout (``ATTENTION_STEPS_PIP_SPEC`` stands
in for the repository URL). Then every notebook, with its solutions filled in, runs top to bottom there.
"""

from __future__ import annotations

import json
from pathlib import Path

from e2e_support import filled, image_outputs, output_problems, read, source_path

#: Distributions the runtime must not hold: the course may not lean on the local environment's extras.
NOT_ON_COLAB = {"nbgrader", "jupyterlab", "notebook", "jupyter-server", "jupytext", "playwright", "pytest"}


def test_setup_cell_installs_the_helper_from_the_wheel(colab):
    info = json.loads(colab.python_check(
        "import json, attention_steps, matplotlib_fontja, sys;"
        "print(json.dumps([attention_steps.__file__, matplotlib_fontja.__file__, sys.prefix]))"))
    helper, font_package, prefix = (Path(p) for p in info)
    assert helper.is_relative_to(colab.venv) and "site-packages" in helper.parts, (
        f"attention_steps was imported from {helper}, not from the Colab-like venv's site-packages")
    assert font_package.is_relative_to(colab.venv), "matplotlib-fontja (the Japanese font) did not come with the wheel"
    assert prefix == colab.venv
    installed = {d["name"].lower().replace("_", "-") for d in json.loads(colab.python_check(
        "import json, importlib.metadata as m; print(json.dumps([{'name': d.metadata['Name']} "
        "for d in m.distributions()]))"))}
    assert "attention-steps" in installed
    assert not installed & NOT_ON_COLAB, f"the Colab-like venv holds {sorted(installed & NOT_ON_COLAB)}"


def test_notebook_runs_in_the_colab_like_runtime(assignment, colab):
    result, executed = colab.execute(filled(assignment), assignment, check=True)
    assert result["ok"], f"{assignment} failed in the Colab-like runtime:\n{result['error']}"
    problems = output_problems(executed)
    assert not problems, f"{assignment} in the Colab-like runtime:\n" + "\n".join(problems)
    assert image_outputs(executed) > 0, f"{assignment} showed no plot in the Colab-like runtime"
    check = result["check"]
    assert check, f"{assignment}: the kernel did not report on itself after the notebook ran"
    assert Path(check["executable"]).is_relative_to(colab.venv), f"the kernel ran {check['executable']}"
    assert Path(check["helper"]).is_relative_to(colab.venv), f"attention_steps came from {check['helper']}"
    assert check["torch"].split("+")[0] == colab.torch_version, f"the kernel ran torch {check['torch']}"
    present = [m for m, there in check["present"].items() if there]
    assert not present, f"{assignment}'s kernel could import {present}, which Colab does not ship"
    font = check["font"]
    assert font["registered"] and not font["warnings"], f"Japanese text is not drawn with glyphs: {font}"
    assert set(font["drawn_by"].values()) == {"ipaexg.ttf"}, (
        f"Japanese characters are drawn by {font['drawn_by']}, not the bundled IPAexGothic")
    print(f"{assignment}: {result['seconds']} s in the Colab-like runtime (torch {check['torch']}), "
          f"{image_outputs(executed)} plots")


def _with_probes(nb, assignment: str, folder: Path) -> list:
    """After each test cell judged outside the kernel (autograder/external/), a cell that runs its probe, as grading
    does; returns (grade_id, steps, probe folder) for each, to judge here once the notebook ran."""
    import nbformat

    from autograder import external
    from autograder.execute import GUARD_FOLDER

    probes, seed = [], 20261203
    for index in reversed(range(len(nb.cells))):
        grade_id = nb.cells[index].metadata.get("nbgrader", {}).get("grade_id", "")
        if nb.cells[index].metadata.get("nbgrader", {}).get("grade") and external.has_check(assignment, grade_id):
            steps, probe = external.steps_for(assignment, grade_id, seed), folder / grade_id
            external.probe.write_spec(probe, steps)
            nb.cells.insert(index + 1, nbformat.v4.new_code_cell(
                f"import sys; sys.path.insert(0, {str(GUARD_FOLDER)!r})\n{external.probe.probe_code(str(probe))}"))
            probes.append((grade_id, steps, probe))
    return probes


def test_hidden_tests_score_full_marks_in_the_colab_like_runtime(assignment, colab, tmp_path):
    """The solution notebook, hidden tests included, scored as nbgrader scores it: a test cell with an error or any
    stderr output (a deprecation warning on a newer torch, say) gets 0; the hidden tests judged outside the kernel
    run their probe in this runtime and are judged here, as in grading."""
    from nbgrader.utils import determine_grade

    from autograder.external.probe import judge, read_results, take_results

    nb = read(source_path(assignment))
    probes = _with_probes(nb, assignment, tmp_path)
    result, executed = colab.execute(nb, f"{assignment}-hidden")
    assert result["ok"], f"{assignment} with hidden tests failed on torch {colab.torch_version}:\n{result['error']}"
    lost = []
    for cell in executed.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            score, top = determine_grade(cell, log=None)
            if score != top:
                outputs = [o.get("text", "") or o.get("evalue", "") for o in cell.outputs]
                lost.append(f"{cell.metadata['nbgrader']['grade_id']}: {score}/{top} {outputs}"[:600])
    for grade_id, steps, probe in probes:
        verdict = judge(steps, read_results(take_results(probe), len(steps)))  # taken, then read, as in grading
        if not verdict.passed:
            lost.append(f"{grade_id}: hidden tests judged outside the kernel: {verdict.message}"[:600])
    assert not lost, f"{assignment} on torch {colab.torch_version} loses points:\n" + "\n".join(lost)
