"""The learner's path in JupyterLab: open a released notebook, run it, press nbgrader's Validate, read the dialog.

Per notebook, on the one server of the session (``lab`` in conftest.py) and in headless Chromium:

- the blank release: *Run All* stops at an unanswered exercise; *Validate* lists failing cells, and every graded
  item of the notebook has one among them;
- the same notebook with each solution pasted into its answer cell (from ``solutions/NN/NN.ipynb``, without the
  ``### BEGIN/END SOLUTION`` lines): *Run All* finishes, no cell shows an error, the plots are rendered images, the
  answer cells saved by Validate hold exactly what was pasted, and *Validate* reports success.

Screenshots of each run notebook are written to ``.bench/e2e/screenshots/`` (see conftest.py).
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import urllib.error

import nbformat
import pytest
from e2e_support import (
    answer_cells,
    image_outputs,
    is_answer,
    is_test,
    item_of,
    meta,
    output_problems,
    read,
    release_path,
    solutions,
    squash,
)

#: How long a whole notebook may take on the fast path, on a busy 2-core machine (Run All, and Validate's run).
TIMEOUT_MS = 1000 * int(os.environ.get("ATTENTION_STEPS_E2E_TIMEOUT", "240"))

# Live state of the open notebook, read in the page: each cell's type and prompt, and what its outputs show.
NOTEBOOK_STATE = r"""() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  const kernel = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  return {
    kernelIdle: kernel ? kernel.getAttribute('data-status') === 'idle' : null,
    cells: cells.map(c => ({
      code: c.classList.contains('jp-CodeCell'),
      prompt: c.querySelector('.jp-InputArea-prompt') ? c.querySelector('.jp-InputArea-prompt').textContent : '',
      errors: [...c.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
        .filter(o => /Traceback \(most recent call last\)|^\w*(Error|Exception)\b/m.test(o.textContent)).length,
    })),
  };
}"""

KERNEL_READY = r"""() => [...document.querySelectorAll('.jp-StatusBar-TextItem')].some(
    e => /^(?!No Kernel).+ \| Idle$/.test(e.textContent.trim()))"""


def _open(context, lab, path: str, workspace: str):
    page = context.new_page()
    page.goto(lab.page_url(path, workspace))
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=120_000)
    # the kernel is started, connected and idle: the status bar says "Python 3 (ipykernel) | Idle"
    page.wait_for_function(KERNEL_READY, timeout=120_000, polling=250)
    return page


def _menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(menu)}$")).click()
    page.locator(".lm-Menu-item:visible .lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def _run_all(page) -> dict:
    """Run All Cells from the Run menu; wait until every code cell ran, or a cell failed and the run stopped."""
    _menu(page, "Run", "Run All Cells")
    condition = "() => { const s = (" + NOTEBOOK_STATE + r""")(); return s && s.kernelIdle
        && !s.cells.some(c => c.prompt.includes('*'))
        && (s.cells.filter(c => c.code).every(c => /\[\d+\]/.test(c.prompt)) || s.cells.some(c => c.errors > 0)); }"""
    page.wait_for_function(condition, timeout=TIMEOUT_MS, polling=250)
    return page.evaluate(NOTEBOOK_STATE)


def _validate(page) -> dict:
    """Press nbgrader's Validate button; return the dialog's verdict and the cells it lists, then close it."""
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .validate-button").click()
    message = page.locator(".jp-Dialog #validation-message")
    message.wait_for(timeout=TIMEOUT_MS)
    classes = message.get_attribute("class") or ""
    verdict = next((c.removeprefix("validation-") for c in classes.split() if c.startswith("validation-")), "error")
    result = {"verdict": verdict, "text": message.inner_text(), "cells": message.locator("pre").all_inner_texts()}
    page.locator(".jp-Dialog .jp-mod-accept").click()
    message.wait_for(state="detached")
    return result


def _paste(page, index: int, text: str) -> None:
    """Select the whole editor of cell ``index`` and paste ``text`` over it, as a learner pastes from a clipboard."""
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)
    cell.scroll_into_view_if_needed()
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.evaluate("""(text) => {
        const data = new DataTransfer();
        data.setData('text/plain', text);
        document.activeElement.dispatchEvent(
            new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
    }""", text)
    page.keyboard.press("Escape")  # leave edit mode, as after typing


def _screenshots(page, folder, stem: str) -> list:
    """Screenshot the whole notebook, one viewport at a time, top to bottom; return the files."""
    scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
    page.evaluate(f"() => document.querySelector('{scroller}').scrollTo(0, 0)")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{stem}-*.png"):
        old.unlink()
    files, k = [], 0
    while True:
        path = folder / f"{stem}-{k:02d}.png"
        page.screenshot(path=str(path))
        files.append(path)
        moved = page.evaluate(f"""() => {{ const s = document.querySelector('{scroller}');
            const before = s.scrollTop; s.scrollTop = before + s.clientHeight - 40; return s.scrollTop > before; }}""")
        k += 1
        if not moved or k >= 60:
            return files


def _non_blank(png: bytes) -> bool:
    from PIL import Image, ImageStat

    with Image.open(io.BytesIO(png)) as im:
        return max(ImageStat.Stat(im.convert("L")).stddev) > 5.0


def _cell_for(failed_source: str, release) -> str | None:
    """The grade_id (or None) of the release cell whose source the dialog shows."""
    target = squash(failed_source)
    for cell in release.cells:
        if cell.cell_type == "code" and squash(cell.source) == target:
            return meta(cell).get("grade_id")
    return None


def test_blank_release_reports_failing_cells(assignment, lab, browser, artifacts):
    release = read(release_path(assignment))
    graded = {item_of(meta(c)["grade_id"]) for c in release.cells if is_answer(c) or is_test(c)}
    assert graded, f"{assignment}: the release has no graded cells"
    page = _open(browser, lab, f"blank/{assignment}/{assignment}.ipynb", f"blank-{assignment}")
    try:
        state = _run_all(page)
        first_error = next(i for i, c in enumerate(state["cells"]) if c["errors"])
        assert is_answer(release.cells[first_error]) or is_test(release.cells[first_error]), (
            f"{assignment}: Run All on the blank release first fails in cell {first_error}, which is not graded")
        error_text = page.locator(".jp-Notebook .jp-Cell").nth(first_error).locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        error_text = "\n".join(error_text)
        assert "NotImplementedError" in error_text, f"{assignment}: the first error is not the unanswered cell's"
        _screenshots(page, artifacts / "screenshots", f"{assignment}-blank")
        result = _validate(page)
        assert result["verdict"] == "failed", f"{assignment}: Validate said {result['verdict']}:\n{result['text']}"
        listed = {_cell_for(src, release) for src in result["cells"]}
        listed_items = {item_of(g) for g in listed if g}
        assert graded <= listed_items, (
            f"{assignment}: Validate's list of failing cells misses the items {sorted(graded - listed_items)}:\n"
            f"{result['text'][:3000]}")
        assert "The following cell failed" in result["text"]
    except Exception:
        page.screenshot(path=str(artifacts / "screenshots" / f"{assignment}-blank-at-failure.png"))
        raise
    finally:
        page.close()
        lab.shutdown_kernels()


def test_filled_notebook_runs_clean_and_validates(assignment, lab, browser, artifacts):
    release = read(release_path(assignment))
    sols = solutions(assignment)
    answers = answer_cells(release)
    assert answers, f"{assignment}: the release has no answer cells"
    page = _open(browser, lab, f"filled/{assignment}/{assignment}.ipynb", f"filled-{assignment}")
    try:
        for index, grade_id in answers:
            _paste(page, index, sols[grade_id])
        start = time.perf_counter()
        state = _run_all(page)
        seconds = time.perf_counter() - start
        errors = [i for i, c in enumerate(state["cells"]) if c["errors"]]
        shots = _screenshots(page, artifacts / "screenshots", f"{assignment}-filled")
        assert not errors, f"{assignment}: cells {errors} show an error after Run All (screenshots: {shots[0].parent})"
        images = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img")
        assert images.count() > 0, f"{assignment}: no plot was rendered (screenshots: {shots[0].parent})"
        for k in range(images.count()):
            img = images.nth(k)
            img.scroll_into_view_if_needed()
            loaded = img.evaluate("i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0")
            assert loaded, f"{assignment}: plot {k} did not load in the page"
            shot = img.screenshot(path=str(artifacts / "screenshots" / f"{assignment}-plot-{k:02d}.png"))
            assert _non_blank(shot), f"{assignment}: plot {k} is blank on screen"
        result = _validate(page)
        assert result["verdict"] == "success", (
            f"{assignment}: Validate on the filled notebook said {result['verdict']}:\n{result['text'][:3000]}")
        # Validate saved the notebook first: the file holds what the page showed.
        saved = nbformat.read(lab.root / "filled" / assignment / f"{assignment}.ipynb", as_version=4)
        for index, grade_id in answers:
            assert saved.cells[index].source == sols[grade_id], (
                f"{assignment}: answer cell {grade_id} does not hold the pasted solution after saving")
        assert not output_problems(saved), "\n".join(output_problems(saved))
        assert image_outputs(saved) == images.count()
        print(f"{assignment}: Run All took {seconds:.1f} s; {images.count()} plots; "
              f"screenshots {json.dumps(str(shots[0].parent))}")
    except Exception:
        page.screenshot(path=str(artifacts / "screenshots" / f"{assignment}-filled-at-failure.png"))
        raise
    finally:
        page.close()
        lab.shutdown_kernels()


def test_learner_lab_has_validate_but_no_instructor_tools(lab):
    """The JupyterLab a learner opens (`make lab`, lab/learner) keeps Validate and turns off nbgrader's instructor
    tools: the frontend gets them as disabled plugins, and the formgrader's server routes are not there."""
    page = lab.api("/lab").decode()
    config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page,
                                  re.S).group(1))
    disabled = set(config.get("disabledExtensions", []))
    for plugin in ("formgrader", "create-assignment", "course-list", "assignment-list", "menu"):
        assert f"@jupyter/nbgrader:{plugin}" in disabled, (plugin, sorted(disabled))
    assert "@jupyter/nbgrader:validate-assignment" not in disabled, sorted(disabled)
    with pytest.raises(urllib.error.HTTPError) as missing:
        lab.api("/formgrader")
    assert missing.value.code == 404
    lab.api("/api/status")  # the server itself answers
