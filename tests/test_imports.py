"""The allowed import directions, read from the source (function-level imports included).

    clinicode core (kb, schema, errors, settings) <- nlp <- models <- engine / serve / training

training never imports ``clinicode.engine`` (it runs packs through ``models.scoring``), nothing on
the inference path imports ``training``, and a suggest in a fresh process loads no training
module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = "clinicode.core"  # clinicode/ less the facade modules below
FACADE = {
    "clinicode",
    "clinicode.engine",
    "clinicode.cli",
    "clinicode.cli_suggest",
    "clinicode.cli_pack",
    "clinicode.cli_batch",
    "clinicode.cli_packs",
}
FACADE_PACKAGES = ("clinicode.batch",)  # batch coding runs the engine: facade too

# layer -> the layers it may import
ALLOWED: dict[str, set[str]] = {
    CORE: {CORE},
    "clinicode.nlp": {CORE, "clinicode.nlp"},
    "clinicode.models": {CORE, "clinicode.nlp", "clinicode.models"},
    "clinicode.training": {CORE, "clinicode.nlp", "clinicode.models", "clinicode.training"},
    "clinicode.serve": {CORE, "clinicode.nlp", "clinicode.models", "clinicode.serve", "engine"},
    "engine": {CORE, "clinicode.nlp", "clinicode.models"},
    "facade": {CORE, "clinicode.nlp", "clinicode.models", "engine", "facade"},
}
FOLDERS = {"nlp": "clinicode.nlp", "models": "clinicode.models", "training": "clinicode.training"}
FOLDERS["serve"] = "clinicode.serve"


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[0] in FOLDERS:
        parts = [*FOLDERS[parts[0]].split("."), *parts[1:]]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> str | None:
    if not (module == "clinicode" or module.startswith("clinicode.")):
        return None
    if module == "clinicode.engine":
        return "engine"
    if module in FACADE or any(module == p or module.startswith(p + ".") for p in FACADE_PACKAGES):
        return "facade"
    for name in ALLOWED:
        if name != CORE and (module == name or module.startswith(name + ".")):
            return name
    return CORE


def _imports(path: Path, module: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                out.append(".".join([*base, node.module] if node.module else base))
            elif node.module == "clinicode" and {a.name for a in node.names} == {"__version__"}:
                out.append("clinicode.version")  # a constant of the package root: core
            elif node.module:
                out.append(node.module)
    return out


def _sources() -> list[Path]:
    roots = [REPO / "clinicode", *(REPO / f for f in FOLDERS)]
    return sorted(p for root in roots for p in root.rglob("*.py"))


def test_every_import_goes_the_allowed_way() -> None:
    bad = []
    for path in _sources():
        module = _module_name(path)
        layer = _layer(module)
        assert layer is not None
        for target in _imports(path, module):
            to = _layer(target)
            if to is not None and to not in ALLOWED[layer]:
                bad.append(f"{module} ({layer}) imports {target} ({to})")
    assert not bad, "\n".join(bad)


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    # the rule table itself: training -> engine and models -> training are refused
    assert "engine" not in ALLOWED["clinicode.training"]
    assert "clinicode.training" not in ALLOWED["clinicode.models"]
    assert _layer("clinicode.engine") == "engine"
    assert _layer("clinicode.kb.store") == CORE
    path = REPO / "models" / "scoring.py"
    assert "clinicode.schema" in _imports(path, "clinicode.models.scoring")


@pytest.mark.slow
def test_suggest_loads_no_training_module(kb_path: Path, tmp_path: Path) -> None:
    from clinicode.kb import open_kb
    from tests.training.tiny_pack import build_tiny_pack

    pack = tmp_path / "pack"
    build_tiny_pack(open_kb(kb_path), pack)
    code = (
        "import sys, clinicode\n"
        f"e = clinicode.load({str(pack)!r}, kb_path={str(kb_path)!r}, cache=False)\n"
        "r = e.suggest('Type 2 diabetes mellitus and essential hypertension.')\n"
        "assert r.codes or r.candidates\n"
        "print(sorted(m for m in sys.modules if m.startswith('clinicode.training')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "[]", out.stdout
