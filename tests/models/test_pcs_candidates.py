"""The ICD-10-PCS candidate generator (``models.pcs.candidates``): imaging, named procedures
and the builder's codes and prefixes, all of them codes (or prefixes) of the PCS tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clinicode.models.types import Candidate


@pytest.fixture(scope="module")
def gen(pcs_kb: Any) -> Any:
    from clinicode.models.pcs.candidates import PcsGenerator

    return PcsGenerator().fit(pcs_kb)


def codes(cands: list[Candidate]) -> dict[str, dict[str, float]]:
    return {c.code: c.features for c in cands}


def test_registered_as_an_uncapped_candidate_generator() -> None:
    from clinicode.models import registry
    from clinicode.models.pcs.candidates import PcsGenerator

    assert registry.get("candidate_generator", "pcs") is PcsGenerator
    assert PcsGenerator.capped is False


def test_single_completion_imaging_is_the_full_code(gen: Any) -> None:
    got = codes(gen.generate("The chest X-ray showed no abnormalities.", []))
    assert "BW03ZZZ" in got  # Plain Radiography of Chest: the only code of its table row
    assert got["BW03ZZZ"]["pcs_single"] == 1.0
    assert "BW03" not in got


def test_imaging_with_undocumented_contrast_is_its_first_four_characters(gen: Any) -> None:
    got = codes(gen.generate("CT of the abdomen and pelvis revealed a 6 cm mass.", []))
    assert got["BW21"]["pcs_prefix"] == 1.0  # CT of Abdomen and Pelvis, contrast not stated
    assert got["BW21ZZZ"]["pcs_nocontrast"] == 1.0  # the no-contrast guess, marked as such
    assert "BW20" not in got  # "abdomen" alone is less specific than "abdomen and pelvis"


def test_adjectives_name_the_title_words(gen: Any) -> None:
    got = codes(gen.generate("Testicular ultrasound was normal. Cranial CT was ordered.", []))
    assert "BV44ZZZ" in got  # Ultrasonography of Scrotum
    assert "BN20" in got  # CT of Skull


def test_named_procedures(gen: Any) -> None:
    got = codes(gen.generate("An electrocardiogram showed sinus rhythm. Colonoscopy: normal.", []))
    assert got["4A02X4Z"]["pcs_named"] == 1.0
    assert "0DJD8ZZ" in got


def test_builder_statement_gives_its_prefix_and_documented_code(gen: Any) -> None:
    text = "PROCEDURE PERFORMED: Laparoscopic cholecystectomy."
    got = codes(gen.generate(text, []))
    assert "0FT44ZZ" in got and got["0FT44ZZ"]["pcs_documented"] == 1.0
    assert got["0FT4"]["pcs_prefix"] == 1.0


def test_every_proposal_is_a_code_or_prefix_of_the_tables(gen: Any, pcs_kb: Any) -> None:
    from clinicode.models.pcs.tables import PcsTables

    tables = PcsTables.from_kb(pcs_kb)
    text = (
        "MRI of the brain and abdominal ultrasound. Echocardiogram. Right nephrectomy was "
        "performed. Hemodialysis was started. Thoraco-abdominal CT with contrast."
    )
    cands = gen.generate(text, [])
    assert cands
    for c in cands:
        assert c.system == "ICD-10-PCS"
        fixed = {i + 1: ch for i, ch in enumerate(c.code)}
        assert tables.completions(fixed), c.code


def test_no_pcs_loaded_no_candidates(kb: Any) -> None:
    from clinicode.models.pcs.candidates import PcsGenerator

    if "ICD-10-PCS" in kb.versions():
        pytest.skip("this KB holds ICD-10-PCS")
    assert PcsGenerator().fit(kb).generate("Chest X-ray: clear.", []) == []


def test_saved_and_loaded(gen: Any, pcs_kb: Any, tmp_path: Path) -> None:
    from clinicode.models.pcs.candidates import PcsGenerator

    gen.save(tmp_path)
    again = PcsGenerator.load(tmp_path, kb=pcs_kb)
    text = "Chest X-ray: clear."
    assert [c.code for c in again.generate(text, [])] == [c.code for c in gen.generate(text, [])]


def test_pipeline_keeps_pcs_candidates_past_the_cap(pcs_kb: Any) -> None:
    from clinicode.models.candidates import CandidatePipeline
    from clinicode.models.pcs.candidates import PcsGenerator

    pipe = CandidatePipeline(("pcs",))
    pipe.generators_ = {"pcs": PcsGenerator().fit(pcs_kb)}
    got = pipe.generate("Chest X-ray and CT of the abdomen.", [], max_candidates=0)
    assert {"BW03ZZZ", "BW20"} <= {c.code for c in got}
    # the pre-ranking score is the generator's own confidence
    assert all(c.score == c.features["pcs_score"] for c in got)
