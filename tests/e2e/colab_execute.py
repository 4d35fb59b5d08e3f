"""Execute one notebook with nbclient, in the Python that runs this script (the Colab-like environment).

    python colab_execute.py NOTEBOOK.ipynb EXECUTED.ipynb [--check]

Runs every cell in order (stopping at the first error, as nbclient does), writes the executed notebook, and prints one
line ``E2E-RESULT {json}``: ok, error, seconds, and with ``--check`` what the same kernel reports afterwards about
itself (its interpreter, where ``attention_steps`` came from, which Jupyter/nbgrader packages are absent) and about
the Japanese font. Only nbclient, nbformat and ipykernel are needed beside the course's own packages.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

# Run in the notebook's kernel after its last cell: facts the test checks, printed as one JSON line.
CHECK = r'''
import importlib.util as _u, json as _j, os as _os, sys as _s, warnings as _w


def _font_check():
    from matplotlib import font_manager, rcParams
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ft2font import FT2Font

    from attention_steps import plotting

    text = "私 は りんご を 食べる"
    with _w.catch_warnings(record=True) as caught:
        _w.simplefilter("always")
        fig = Figure(figsize=(3, 1))
        FigureCanvasAgg(fig)
        fig.text(0.05, 0.3, text, fontsize=20)
        fig.canvas.draw()
    fonts = font_manager.fontManager._find_fonts_by_props(font_manager.FontProperties(family=rcParams["font.family"]))
    drawn_by = {}
    for ch in sorted(set(text) - {" "}):
        for path in fonts:
            if FT2Font(str(path)).get_char_index(ord(ch)):
                drawn_by[ch] = _os.path.basename(str(path))
                break
    return {"registered": plotting.HAS_JAPANESE_FONT, "drawn_by": drawn_by,
            "warnings": [str(m.message) for m in caught if "missing from" in str(m.message)]}


import attention_steps as _a, torch as _torch
print("E2E-CHECK " + _j.dumps({
    "executable": _s.executable, "torch": _torch.__version__, "prefix": _s.prefix, "helper": _a.__file__,
    "present": {m: _u.find_spec(m) is not None for m in
                ["nbgrader", "jupyterlab", "notebook", "jupyter_server", "jupytext", "playwright", "pytest"]},
    "font": _font_check(),
}))
'''


def main(argv: list[str]) -> int:
    src, dst = Path(argv[0]), Path(argv[1])
    nb = nbformat.read(src, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(src.parent)}})
    result: dict = {"ok": True, "error": "", "check": None}
    start = time.perf_counter()
    with client.setup_kernel():
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        except CellExecutionError as e:
            result["ok"], result["error"] = False, str(e)[-3000:]
        result["seconds"] = round(time.perf_counter() - start, 1)
        if "--check" in argv and result["ok"]:
            check = nbformat.v4.new_code_cell(CHECK)
            nb.cells.append(check)
            client.execute_cell(check, len(nb.cells) - 1)
            nb.cells.pop()  # the executed notebook is the learner's, without this probe
            for out in check.outputs:
                for line in out.get("text", "").splitlines():
                    if line.startswith("E2E-CHECK "):
                        result["check"] = json.loads(line.removeprefix("E2E-CHECK "))
    nbformat.write(nb, dst)
    print("E2E-RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
