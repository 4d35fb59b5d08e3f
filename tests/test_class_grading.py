"""Grading a class on workers (autograder/batch.py): the same rows and notes with ``--jobs 1`` and ``--jobs 2``,
after Ctrl-C and a second run, and on a real Dask cluster (a scheduler and two workers on localhost) with workers
killed mid-job — once (the job is retried elsewhere) and past the scheduler's allowed failures (``KilledWorker``:
the student still gets a row, with a note).

The class: five honest submissions of notebook 00 from its catalog (qa/synthetic.py) and one whose answer kills its
kernel. Each run grades in its own grading folder, through the CLI, with short limits.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from autograder.paths import ROOT
from qa.dask_cluster import Cluster
from qa.synthetic import build_class

pytestmark = [pytest.mark.kernel]

ASSIGNMENT = "00_orientation"
LIMITS = {"AG_CELL_TIMEOUT": "15", "AG_NOTEBOOK_TIMEOUT": "50"}
CRASH = {"crash": {"softmax": "import os\nos._exit(1)\n"}}  # the kernel dies while the answer cell runs


def _env(grading: Path, **extra) -> dict:
    env = dict(os.environ, ATTENTION_STEPS_GRADING_DIR=str(grading), **LIMITS, **extra)
    env["PYTHONPATH"] = str(ROOT)
    return env


def _grade(grading: Path, klass: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "grade", str(klass), "--assignment", ASSIGNMENT,
                           "--no-progress", *args], cwd=ROOT, env=_env(grading), capture_output=True, text=True,
                          timeout=900)


def _rows(grading: Path) -> dict[str, dict]:
    """Every student's points per item, total and notes, from the report's grades.csv."""
    proc = subprocess.run([sys.executable, "-m", "autograder", "report"], cwd=ROOT, env=_env(grading),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(grading / "reports" / "grades.csv") as f:
        return {r.pop("student"): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    return folder, build_class(ASSIGNMENT, 5, folder, extra=CRASH)


@pytest.fixture(scope="module")
def serial(klass, tmp_path_factory):
    """The class graded with one job: the rows every other way must give."""
    grading = tmp_path_factory.mktemp("serial")
    proc = _grade(grading, klass[0], "--jobs", "1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _rows(grading)
    assert set(rows) == set(klass[1])
    assert rows["s000"]["score"] == rows["s000"]["max_score"], rows["s000"]  # the solution: full marks
    assert float(rows["s004"]["score"]) == 0  # the blank release
    assert float(rows["crash"]["score"]) < float(rows["crash"]["max_score"]) and "kernel died" in rows["crash"][
        "notes"], rows["crash"]
    assert len({r["score"] for r in rows.values()}) >= 3, rows  # a mixed class: right, partly right, wrong
    return rows


def test_two_jobs_give_the_same_rows_and_notes(klass, serial, tmp_path):
    proc = _grade(tmp_path, klass[0], "--jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 2 local worker process(es)" in proc.stderr
    assert _rows(tmp_path) == serial


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def test_interrupted_class_resumes_where_it_stopped(klass, serial, tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) once two submissions are saved: exit 130, no process left,
    the gradebook whole; the second run keeps the saved ones (their records untouched) and grades the rest."""
    done = tmp_path / "done"
    boxes_before = set(Path("/tmp").glob("agk-*"))
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(klass[0]), "--assignment", ASSIGNMENT,
                             "--no-progress", "--jobs", "2"], cwd=ROOT, env=_env(tmp_path), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(list(done.rglob("*.json"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    started = _descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-2000:] + err[-3000:]
    assert "interrupted" in err
    kept = {p.parent.name: p.read_bytes() for p in done.rglob("*.json")}
    assert 2 <= len(kept) < len(serial), kept.keys()
    gone = psutil.wait_procs([p for p in started if p.is_running()], timeout=20)[1]
    assert not gone, f"left running after Ctrl-C: {[p.info if hasattr(p, 'info') else p for p in gone]}"
    assert set(Path("/tmp").glob("agk-*")) <= boxes_before, "a sandbox folder was left behind"
    with sqlite3.connect(tmp_path / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    again = _grade(tmp_path, klass[0], "--jobs", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(kept)} submission(s) kept" in again.stderr and f"grading {len(serial) - len(kept)}" in again.stderr
    assert {s: (done / s / f"{ASSIGNMENT}.json").read_bytes() for s in kept} == kept  # not graded again
    assert _rows(tmp_path) == serial


def test_dask_cluster_with_killed_workers(klass, serial, tmp_path):
    """s001's worker is killed once: its job runs again on a worker, same row. s002's workers are
    killed twice, past allowed-failures=1: KilledWorker, and s002 still gets a row (no points) with a note."""
    cluster = Cluster(tmp_path, allowed_failures=1)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(klass[0]), "--assignment",
                                 ASSIGNMENT, "--no-progress", "--scheduler", cluster.address], cwd=ROOT,
                                env=_env(tmp_path / "grading"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        kills = {"s001": 1, "s002": 2}
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            for student, left in kills.items():
                if left and cluster.kill_worker_running(student):
                    kills[student] -= 1
                    time.sleep(1)  # the scheduler notices, the nanny starts a new worker
            time.sleep(0.1)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out[-2000:] + err[-3000:]
        assert kills == {"s001": 0, "s002": 0}, f"the jobs were not caught running: {kills}"
        assert "Dask worker" in err
        rows = _rows(tmp_path / "grading")
        assert "KilledWorker" in rows["s002"]["notes"] and float(rows["s002"]["score"]) == 0, rows["s002"]
        assert {s: r for s, r in rows.items() if s != "s002"} == {s: r for s, r in serial.items() if s != "s002"}
    finally:
        cluster.close()
    time.sleep(2)
    left = [p for p in psutil.process_iter(["name", "cmdline", "status"]) if p.info["status"] != psutil.STATUS_ZOMBIE
            and (p.info["name"] == "bwrap" or "sandbox_launch" in " ".join(p.info["cmdline"] or []))]
    assert not left, f"sandbox processes left behind by the killed workers: {[p.info for p in left]}"
    # (a killed sandbox whose parents died is reaped by PID 1; in a container without an init it stays a zombie)
    records = [json.loads(p.read_text()) for p in (tmp_path / "grading" / "done").rglob("*.json")]
    assert len(records) == len(serial)
