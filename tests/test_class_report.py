"""The class report's two files, from rows alone: the HTML summary and Canvas's gradebook import CSV."""

import csv

import nbformat

from autograder.class_report import failure_message, write_canvas, write_html
from autograder.grading import Row


def _rows():
    return [Row("ann", "00_orientation", {"softmax": (3.0, 3.0), "one_hot_embed": (2.0, 2.0)}),
            Row("ben", "00_orientation", {"softmax": (0.0, 3.0), "one_hot_embed": (2.0, 2.0)},
                notes=["flagged for review: the learner's code uses os._exit"]),
            Row("cy", "00_orientation", {"softmax": (0.0, 3.0), "one_hot_embed": (0.0, 2.0)}),
            Row("ann", "01_rnn", {"rnn_cell": (4.0, 4.0)})]


def test_canvas_csv_uses_the_roster_and_canvas_titles(tmp_path):
    roster = tmp_path / "canvas_roster.csv"
    roster.write_text("student,Student,ID,SIS User ID,SIS Login ID,Section\n"
                      "ann,\"Lee, Ann\",101,S1,ann@uni,A\n"
                      "@assignment:00_orientation,Notebook 00 (555),,,,\n")
    out = write_canvas(_rows(), roster, tmp_path / "canvas.csv")
    with open(out, newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Notebook 00 (555)", "01_rnn"]
    assert lines[1][0] == "Points Possible" and lines[1][5:] == ["5", "4"]
    assert ["Lee, Ann", "101", "S1", "ann@uni", "A", "5", "4"] in lines
    assert ["ben", "", "", "ben", "", "2", ""] in lines  # not on the roster: matched on SIS Login ID, no 01 grade


def test_html_names_the_most_missed_item_its_message_and_the_flags(tmp_path):
    messages = {("00_orientation", "ben"): {"softmax": "AssertionError: overflow"},
                ("00_orientation", "cy"): {"softmax": "AssertionError: overflow",
                                           "one_hot_embed": "NotImplementedError"}}
    text = write_html(_rows(), messages, tmp_path / "r.html").read_text()
    missed = text[text.index("Items most students missed"):]
    assert missed.index("softmax") < missed.index("one_hot_embed")  # missed by 2, then by 1
    assert "2 of 3" in missed and "AssertionError: overflow</code> (2×)" in missed
    assert "Flagged submissions (1)" in text and "os._exit" in text


def test_failure_message_reads_the_first_error_of_each_test_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("assert False", metadata={"nbgrader": {"grade_id": "test_softmax"}})
    cell.outputs = [nbformat.v4.new_output("error", ename="HiddenTestFailed", evalue="case 3", traceback=[])]
    nb.cells.append(cell)
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert failure_message(tmp_path / "n.ipynb", {"test_softmax": "softmax"}) == {"softmax": "a hidden test failed"}
