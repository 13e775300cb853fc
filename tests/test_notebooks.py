"""Every notebook in ``notebooks/`` runs, on a small sample, in the venv's kernel (so they never
rot), and every committed notebook carries its outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA, installed_default_pack, shared_path

NOTEBOOKS = sorted(p for p in (REPO / "notebooks").glob("*.ipynb") if not p.name.startswith("."))
CI_SAMPLE = "12"


def test_there_are_notebooks() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {"explore_codiesp.ipynb", "train_and_evaluate.ipynb", "error_analysis.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_has_its_outputs(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c.get("execution_count") for c in code), "not executed: run and save it"
    assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert any(o.get("output_type") in ("execute_result", "display_data", "stream")
               for c in code for o in c.get("outputs", []))  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_a_small_sample(
    path: Path, kb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbformat = pytest.importorskip("nbformat", reason="needs the notebooks extra (nbformat)")
    pytest.importorskip("nbclient", reason="needs the notebooks extra (nbclient)")
    pytest.importorskip("ipykernel", reason="needs the notebooks extra (ipykernel)")
    shared_path("codiesp", "train")
    from clinicode.training.notebooks import run_notebook

    nb = nbformat.read(path, as_version=4)
    # one more cell (not saved): the kernel is this venv's Python and imports this checkout
    nb.cells.append(nbformat.v4.new_code_cell(
        "import sys, clinicode; print(sys.prefix); print(clinicode.__file__)"
    ))  # fmt: skip
    copy = path.parent / f".test-{path.name}"
    nbformat.write(nb, copy)
    env = {
        "CLINICODE_DATA_DIR": str(kb_path.parent),
        "CLINICODE_SHARED_DATA": str(SHARED_DATA.resolve()),
        "CLINICODE_FETCH_ON_SETUP": "0",
        # idle OpenMP threads sleep rather than spin: the same trees, but on a shared, loaded
        # machine a spinning runtime made the ranker fit 10-25x slower
        # (bench/bench_ranker_fit.py)
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    if path.stem == "feedback_loop":  # it retrains the serving pack: the installed default pack
        env["CLINICODE_MODEL_DIR"] = str(installed_default_pack())
    try:
        ran, took = run_notebook(copy, sample=int(CI_SAMPLE), env=env, timeout=300)
    finally:
        copy.unlink(missing_ok=True)
    print(f"{path.name}: {took:.1f} s")
    prefix, module = ran.cells[-1].outputs[0]["text"].split()
    assert prefix == sys.prefix
    assert Path(module).resolve().is_relative_to(REPO)
    first = "".join(o.get("text", "") for o in ran.cells[1].outputs)
    assert f"sample: {CI_SAMPLE} notes" in first
