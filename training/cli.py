"""``clinicode train`` and ``clinicode evaluate`` (``clinicode suggest`` is the facade's, in
``clinicode/cli.py``: training never imports the engine).

``register(app)`` adds them to the root command (``clinicode/cli.py`` calls it lazily).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from clinicode.errors import InputError

DataOpt = typer.Option(..., "--data", help="Labeled notes: a CodiEsp split folder or JSONL.")
FormatOpt = typer.Option("codiesp", "--format", help="codiesp | jsonl")
ModelOpt = typer.Option(None, "--model", help="Model pack folder (default: the default pack).")


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _check_format(fmt: str) -> None:
    if fmt not in ("codiesp", "jsonl"):
        raise InputError(f"--format must be codiesp or jsonl, not {fmt!r}")


def train_cmd(
    data: Path = DataOpt,
    fmt: str = FormatOpt,
    out: Path = typer.Option(..., "--out", help="Folder to write the new pack to."),
    base: Path | None = typer.Option(None, "--base", help="Reuse this pack's candidate index."),
    dev: Path | None = typer.Option(
        None, "--dev", help="Labeled dev notes (same format) to choose the threshold on."
    ),
    seed: int = typer.Option(0, help="Random seed."),
    name: str = typer.Option("clinicode-trained", help="Pack name."),
    generators: str = typer.Option(
        "lexical,structure,pcs",
        help="Candidate generators, comma-separated (lexical, dense, structure, pcs), or 'none'.",
    ),
    folds: int = typer.Option(5, min=2, help="Cross-fitting folds of the note classifier."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Train a model pack on labeled notes and print the training report (JSON)."""
    from clinicode.kb import open_kb
    from clinicode.training.data import load_notes
    from clinicode.training.train import TrainConfig, train_pack

    _check_format(fmt)
    gens = tuple(g.strip() for g in generators.split(",") if g.strip() and g.strip() != "none")
    for g in gens:
        if g not in ("lexical", "dense", "structure", "pcs"):
            raise InputError(f"unknown candidate generator {g!r}")
    notes = load_notes(data, fmt)
    dev_notes = load_notes(dev, fmt) if dev is not None else None
    report = train_pack(
        notes,
        kb=open_kb(),
        out=out,
        dev_notes=dev_notes,
        base=base,
        cfg=TrainConfig(seed=seed, name=name, generators=gens, n_folds=folds),
        progress=not quiet,
        log=lambda m: typer.echo(m, err=True),
    )
    _print_json({"pack": str(out), **report})


def evaluate_cmd(
    data: Path = DataOpt,
    fmt: str = FormatOpt,
    task: str = typer.Option("D", "--task", help="D (diagnoses) or P (procedures)."),
    model: Path | None = ModelOpt,
    predictions_out: Path | None = typer.Option(
        None,
        "--predictions-out",
        help="Write the ranked predictions of --order, doc<TAB>code (CodiEsp format).",
    ),
    order: str = typer.Option(
        "ranker",
        "--order",
        help="ranker: by the ranker's score, before the guidelines; served: exactly what "
        "`suggest` serves (codes, candidates, then suppressed). Both are reported under "
        "'orders'; this one is the top-level figures and --predictions-out.",
    ),
    setting: str = typer.Option("outpatient", help="inpatient | outpatient (served order)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """MAP, CodiEsp MAP, micro P/R/F1, P@5/10, R@10/50 in the ranker's and the served order (JSON)."""
    from clinicode.training.data import load_notes
    from clinicode.training.evaluate import ORDERS, evaluate_pack, load_path

    _check_format(fmt)
    if task not in ("D", "P"):
        raise InputError(f"--task must be D or P, not {task!r}")
    if order not in ORDERS:
        raise InputError(f"--order must be ranker or served, not {order!r}")
    if setting not in ("inpatient", "outpatient"):
        raise InputError(f"--setting must be inpatient or outpatient, not {setting!r}")
    notes = load_notes(data, fmt)
    result = evaluate_pack(
        load_path(model),
        notes,
        task,
        order=order,
        setting=setting,
        predictions_out=predictions_out,
        progress=not quiet,
    )
    _print_json(result)


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("evaluate")(evaluate_cmd)
