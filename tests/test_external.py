"""Hidden tests as data: the probe's files, how the grader reads them, and what it concludes (no kernel needed).

The probe (``autograder/kernel/grading_probe.py``) runs here in-process on a namespace of plain functions; grading
runs the same module in the sandboxed kernel (tests/test_adversarial_grading.py, tests/test_demo_class.py).
"""

import json
import os

import numpy as np
import pytest
import torch

from autograder import external
from autograder.external import orientation
from autograder.external.probe import ProbeError, Step, read_results, take_results, write_spec
from qa.in_process import solution_definitions, verdict_of


def right_softmax(x, dim=-1):
    shifted = x - x.max(dim=dim, keepdim=True).values
    e = torch.exp(shifted)
    return e / e.sum(dim=dim, keepdim=True)


def right_embed(ids, weight):
    if weight.dim() != 2 or ids.dtype.is_floating_point:
        raise ValueError("weight must be 2-D and ids integer")
    if ids.numel() and (ids.min() < 0 or ids.max() >= weight.shape[0]):
        raise ValueError(f"id {int(ids.min()) if ids.min() < 0 else int(ids.max())} outside [0, {weight.shape[0]})")
    return (ids.long().unsqueeze(-1) == torch.arange(weight.shape[0])).to(weight.dtype) @ weight


def verdict(tmp_path, grade_id, namespace, seed=7):
    return verdict_of(external.steps_for("00_orientation", grade_id, seed), tmp_path / "probe", namespace)


def test_right_answers_pass_and_the_folder_is_removed(tmp_path):
    for seed in (1, 2):
        assert verdict(tmp_path, "test_softmax", {"softmax": right_softmax}, seed).passed
        assert verdict(tmp_path, "test_one_hot_embed", {"one_hot_embed": right_embed}, seed).passed
    assert not (tmp_path / "probe").exists()


@pytest.mark.parametrize("wrong, phrase", [
    (lambda x, dim=-1: x, "softmax on a float64 tensor"),
    (lambda x, dim=-1: torch.exp(x) / torch.exp(x).sum(dim, keepdim=True), "size"),  # no max subtracted
    (lambda x, dim=-1: right_softmax(x, -1), "dim=0"),                              # ignores dim
    (lambda x, dim=-1: torch.softmax(x, dim), "forbidden"),
    (lambda x, dim=-1: right_softmax(x.float(), dim), "dtype"),
    (lambda x, dim=-1: x.sub_(x.max(dim, keepdim=True).values).exp().div(x.exp().sum(dim, keepdim=True)), "modified"),
])
def test_wrong_softmax_fails_with_a_message_about_the_case(tmp_path, wrong, phrase):
    result = verdict(tmp_path, "test_softmax", {"softmax": wrong})
    assert not result.passed
    assert phrase in result.message, result.message


def test_missing_name_and_errors_fail(tmp_path):
    assert "NameError" in verdict(tmp_path, "test_softmax", {}).message
    embed_no_check = lambda ids, w: w[ids.long()]  # noqa: E731 - indexing: right values, no ValueError for id -1
    result = verdict(tmp_path, "test_one_hot_embed", {"one_hot_embed": embed_no_check})
    assert not result.passed and "ValueError" in result.message, result.message


def test_seeds_change_the_inputs():
    a = orientation.softmax_steps(np.random.default_rng(1))[0].args[0]
    b = external.steps_for("00_orientation", "test_softmax", 1)[0].args[0]
    c = external.steps_for("00_orientation", "test_softmax", 2)[0].args[0]
    assert a.shape == b.shape == c.shape and not np.array_equal(b, c)


def _one_step_results(folder, value_entry, files=()):
    for name, data in files:
        (folder / name).write_bytes(data) if isinstance(data, bytes) else np.save(folder / name, data)
    (folder / "result.json").write_text(json.dumps({"steps": [{"id": 0, "error": None, "value": value_entry}]}))
    return _read(folder, 1)


def _read(folder, steps):
    """As grading does it: the files taken where the kernel ran, then read as data where the grader is."""
    return read_results(take_results(folder), steps)


def test_reader_takes_data_only(tmp_path):
    ok = _one_step_results(tmp_path, {"array": "out1.npy", "dtype": "float32"}, [("out1.npy", np.ones(3, np.float32))])
    assert ok[0].value.tolist() == [1, 1, 1] and ok[0].dtype == "float32"
    np.save(tmp_path / "out2.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ProbeError):  # a pickled object array is never loaded
        _one_step_results(tmp_path, {"array": "out2.npy"})
    os.symlink("/etc/passwd", tmp_path / "out3.npy")
    with pytest.raises(ProbeError):  # no links: the kernel can't make the grader read a file of its choosing
        _one_step_results(tmp_path, {"array": "out3.npy"})
    (tmp_path / "out3.npy").unlink()
    (tmp_path / "out2.npy").unlink()
    probe_folder = tmp_path / "probe"
    probe_folder.symlink_to(tmp_path)
    with pytest.raises(ProbeError):  # nor a link in the place of the probe's folder
        take_results(probe_folder)
    with pytest.raises(ProbeError):  # only names the probe writes
        _one_step_results(tmp_path, {"array": "../spec.json"})
    (tmp_path / "result.json").write_text("not json")
    with pytest.raises(ProbeError):
        _read(tmp_path, 1)
    (tmp_path / "result.json").write_text(json.dumps({"steps": []}))
    with pytest.raises(ProbeError):
        _read(tmp_path, 1)


def test_reader_caps_sizes(tmp_path, monkeypatch):
    from autograder.external import probe

    monkeypatch.setattr(probe, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(ProbeError):
        _one_step_results(tmp_path, {"array": "out1.npy"}, [("out1.npy", np.zeros(1000))])


def test_spec_holds_no_reference(tmp_path):
    steps = [Step("softmax", [np.ones(3)], expect=lambda r: None)]
    write_spec(tmp_path / "p", steps)
    spec = (tmp_path / "p" / "spec.json").read_text()
    assert "expect" not in spec and "reference" not in spec
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["in0.npy", "spec.json"]


@pytest.mark.parametrize("assignment", sorted(external.CHECKS))
def test_solutions_pass_their_external_checks_for_any_seed(tmp_path, assignment):
    """The solution's answer cells, run here as plain code, pass every item's checks on three fresh seeds."""
    namespace = solution_definitions(assignment)
    for grade_id in external.CHECKS[assignment]:
        for seed in (11, 12, 13):
            steps = external.steps_for(assignment, grade_id, seed)
            got = verdict_of(steps, tmp_path / f"{grade_id}-{seed}", namespace)
            assert got.passed, f"{assignment} {grade_id} seed {seed}: {got.message}"


def test_probe_builds_a_module_loads_weights_and_reports_facts(tmp_path):
    """The probe's module path: build, cast, load the grader's weights, call, backward to parameters, facts."""
    from autograder.external.expect import all_of, returns
    from autograder.external.probe import Opaque, dtype, method, ref

    class Affine(torch.nn.Module):
        def __init__(self, d):
            super().__init__()
            self.proj = torch.nn.Linear(d, d)

        def forward(self, x):
            return self.proj(x)

    rng = np.random.default_rng(0)
    weight, bias, x = rng.standard_normal((3, 3)), rng.standard_normal(3), rng.standard_normal((2, 3))
    upstream = rng.standard_normal((2, 3))
    facts = {}

    def remember(result):
        facts.update(result.facts)

    steps = [Step("Affine", [3], keep="m", facts=("parameters", "proj", "proj.in_features"), expect=remember),
             Step(method("m", "to"), [dtype("float64")]),
             Step(None, set_parameters={"proj.weight": weight, "proj.bias": bias}, on="m"),
             Step(ref("m"), [x], upstream=upstream, parameter_grads="m", expect=all_of(
                 returns(x @ weight.T + bias, name="affine", dtype="float64"),
                 lambda r: None if np.allclose(r.grads["param:proj.weight"], upstream.T @ x) else "weight grad")),
             Step("Affine", [3], expect=returns(np.zeros(1), name="a module is not a tensor"))]
    got = verdict_of(steps, tmp_path / "probe", {"Affine": Affine})
    assert not got.passed and "a module is not a tensor: expected a tensor" in got.message, got.message
    assert facts == {"parameters": {"proj.weight": [3, 3], "proj.bias": [3]}, "proj": Opaque("Linear"),
                     "proj.in_features": 3}
    assert verdict_of(steps[:4], tmp_path / "probe2", {"Affine": Affine}).passed


@pytest.mark.parametrize("assignment", sorted(external.CHECKS))
def test_external_checks_alone_reject_every_wrong_catalog_version(tmp_path, assignment):
    """The grader's own judgement, without the visible tests (which the learner's code can subvert), rejects every
    wrong version in the item's catalog and accepts every right one."""
    from attention_steps import testing
    from autograder.notebooks import items, nbgrader_meta, read_source
    from qa.discrimination import load_catalog

    base = {**vars(testing), **solution_definitions(assignment)}
    notebook_items = items(read_source(assignment))
    catalog, problems = load_catalog(assignment), []
    for item in notebook_items:
        grade_ids = [nbgrader_meta(test)["grade_id"] for test in item.tests]
        for kind in ("wrong", "right"):
            for number, (label, source) in enumerate(catalog[item.name][kind].items()):
                namespace = dict(base)
                exec(source, namespace)
                verdicts = [verdict_of(external.steps_for(assignment, grade_id, 5),
                                       tmp_path / f"{item.name}-{kind}-{number}-{grade_id}", namespace)
                            for grade_id in grade_ids]
                if all(v.passed for v in verdicts) != (kind == "right"):
                    problems.append(f"{item.name}: {kind} version {label!r} "
                                    f"{'passes' if kind == 'wrong' else 'fails'}: "
                                    f"{[v.message for v in verdicts if not v.passed]}")
    assert not problems, "\n".join(problems)


def test_probe_passes_seeded_generators_and_records_the_largest_tensor_created(tmp_path):
    from autograder.external.expect import creates_at_most
    from autograder.external.probe import generator

    def draw(n, generator=None):
        return torch.randint(0, 1000, (n,), generator=generator)

    def blockwise(x):
        return sum(row @ x.T for row in x) if x.shape[0] > 32 else (x @ x.T).sum(0)  # S values, or S × S

    taken = {}

    def keep(result):
        taken.setdefault("draws", []).append(result.value)

    steps = [Step("draw", [20], {"generator": generator(5)}, expect=keep),
             Step("draw", [20], {"generator": generator(5)}, seed=1, expect=keep),
             Step("blockwise", [np.ones((40, 3))], watch=True, expect=creates_at_most(40 * 40, name="rows", why="x")),
             Step("blockwise", [np.ones((8, 3))], watch=True, expect=creates_at_most(8 * 8, name="all", why="S × S"))]
    result = verdict_of(steps, tmp_path / "probe", {"draw": draw, "blockwise": blockwise})
    first, second = taken["draws"]
    assert np.array_equal(first, second) and np.array_equal(first, draw(20, torch.Generator().manual_seed(5)).numpy())
    assert not result.passed and "all: a tensor of shape (8, 8) was created (S × S)" in result.message, result.message
    assert verdict_of(steps[2:3], tmp_path / "again", {"blockwise": blockwise}).passed
