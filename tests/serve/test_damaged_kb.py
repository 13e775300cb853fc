"""Issue 13, failure 5 (the service side): a damaged knowledge base gives 503 naming the file,
never a 500 and never its absolute path, and ``/health/ready`` says which file it is."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clinicode.kb import KnowledgeBase

from .conftest import USER_KEY, FakeEngine


class KBReadingEngine(FakeEngine):
    """The fake engine, reading its code sets on every note as the real one does."""

    def suggest(self, text: str, setting: str = "outpatient", **kw: Any) -> Any:
        assert self.kb.get("E11.9", "ICD-10-CM") is not None
        return super().suggest(text, setting, **kw)


@pytest.fixture
def damaged(tmp_path: Path, kb_path: Path, settings: Any) -> Iterator[tuple[Any, Path]]:
    from fastapi.testclient import TestClient

    from clinicode.serve.app import create_app

    copy = settings.data_dir / "kb.sqlite"
    copy.unlink()
    shutil.copyfile(kb_path, copy)
    engine = KBReadingEngine(kb=KnowledgeBase(copy))
    app = create_app(settings, engine_factory=lambda: engine)
    with TestClient(app) as client:
        client.headers["X-API-Key"] = USER_KEY
        yield client, copy


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def test_a_truncated_kb_gives_503_naming_the_file(damaged: tuple[Any, Path]) -> None:
    client, path = damaged
    assert client.get("/v1/codes/search", params={"q": "diabetes"}).status_code == 200
    _truncate(path)
    for method, url, body in (
        ("GET", "/v1/codes/search?q=diabetes", None),
        ("GET", "/v1/codes/ICD-10-CM/E11.9", None),
        ("POST", "/v1/suggest", {"text": "Hypertension.", "setting": "outpatient"}),
    ):
        r = client.request(method, url, json=body)
        assert r.status_code == 503, (url, r.status_code, r.text)
        detail = r.json()["detail"]
        assert "kb.sqlite is truncated" in detail, detail
        assert str(path.parent) not in detail and "setup --force" in detail
    r = client.get("/health/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["file"] == "kb.sqlite" and "kb.sqlite is truncated" in body["reason"]
    assert "/" not in body["reason"]


def test_an_emptied_kb_is_named_too(damaged: tuple[Any, Path]) -> None:
    client, path = damaged
    path.write_bytes(b"")
    r = client.get("/health/ready")
    assert r.status_code == 503 and "kb.sqlite is empty (0 bytes)" in r.json()["reason"]
    r = client.get("/v1/codes/ICD-10-CM/E11.9")
    assert r.status_code == 503 and "kb.sqlite" in r.json()["detail"]


def test_ready_never_shows_an_absolute_path(settings: Any) -> None:
    from fastapi.testclient import TestClient

    from clinicode.errors import ClinicodeError
    from clinicode.serve.app import create_app

    def broken() -> Any:
        raise ClinicodeError(f"model pack not found at {settings.data_dir}/packs/default")

    with TestClient(create_app(settings, engine_factory=broken)) as client:
        r = client.get("/health/ready")
    assert r.status_code == 503
    assert str(settings.data_dir) not in r.text and "default" in r.json()["reason"]
