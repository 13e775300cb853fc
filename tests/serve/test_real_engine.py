"""End to end with the real engine (``clinicode.load()``), through the app's default factory.

Skips with the reason when the engine or a model pack is not available (``make setup`` builds
the default pack; CLINICODE_MODEL_DIR points at another).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from clinicode.schema import SuggestResult

pytestmark = pytest.mark.slow

NOTE = (
    "ASSESSMENT: 67-year-old man with type 2 diabetes mellitus with diabetic chronic kidney "
    "disease, stage 3. Essential hypertension. No evidence of pneumonia.\n"
)


def _pack_dir() -> Path:
    if importlib.util.find_spec("clinicode.engine") is None:
        pytest.skip("clinicode.engine is not built yet")
    env = os.environ.get("CLINICODE_MODEL_DIR")
    # The user's default pack (the test session points CLINICODE_DATA_DIR at a temp dir).
    pack = (
        Path(env) if env else Path.home() / ".local" / "share" / "clinicode" / "packs" / "default"
    )
    if not (pack / "manifest.json").exists():
        pytest.skip(f"no model pack at {pack} (run `make setup` or set CLINICODE_MODEL_DIR)")
    return pack


def test_real_engine_through_the_api(settings: Any, user_key: str) -> None:
    from fastapi.testclient import TestClient

    from clinicode.serve.app import create_app

    pack = _pack_dir()
    app = create_app(settings.model_copy(update={"model_dir": pack, "model_load_timeout_s": 600}))
    with TestClient(app) as c:
        c.headers["X-API-Key"] = user_key
        r = c.post("/v1/suggest", json={"text": NOTE, "setting": "outpatient"})
        if r.status_code == 503:
            pytest.fail(f"the pack at {pack} did not load: {r.json()['detail']}")
        assert r.status_code == 200, r.text
        body = r.json()
        result = SuggestResult.model_validate(body)
        assert result.model_dump(mode="json") == body
        assert result.model.version and result.code_sets.get("ICD-10-CM")
        for s in [*result.codes, *result.candidates, *result.suppressed]:
            assert s.suggestion_id
            for ev in s.evidence:
                assert NOTE[ev.start : ev.end] == ev.text
        ready = c.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["model"]["version"] == result.model.version
        engine = c.app.state.service.holder.engine
        assert engine.pids and os.getpid() not in engine.pids  # the default: engine processes
        if result.codes:
            fb = c.post(
                "/v1/feedback",
                json={"suggestion_id": result.codes[0].suggestion_id, "action": "accept"},
            )
            assert fb.status_code == 201, fb.text
            assert fb.json()["model_version"] == result.model.version
