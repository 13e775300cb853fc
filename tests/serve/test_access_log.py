"""Issue 13, failure 7: uvicorn's access log never prints query text (a search may quote a
note), through the filter the app installs in every worker."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from clinicode.serve.access_log import DropQueryFilter, strip_query


def test_strip_query() -> None:
    assert strip_query("/v1/codes/search?q=HIV+positive&limit=5") == "/v1/codes/search?…"
    assert strip_query("/v1/suggest") == "/v1/suggest"


def test_the_access_log_of_a_search_has_no_query(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from uvicorn.logging import AccessFormatter

    logger = logging.getLogger("uvicorn.access")
    assert any(isinstance(f, DropQueryFilter) for f in logger.filters)  # installed by the app
    assert client.get("/v1/codes/search", params={"q": "hiv positive"}).status_code == 200
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        # the call uvicorn's h11/httptools protocols make for every request
        logger.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:51000",
            "GET",
            "/v1/codes/search?q=hiv+positive",
            "1.1",
            200,
        )
    (record,) = caplog.records
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)
    assert "hiv" not in line and "/v1/codes/search?…" in line
