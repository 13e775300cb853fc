"""Retention of stored note texts: ``CLINICODE_NOTE_RETENTION_DAYS`` days, then the purge
blanks them (:meth:`clinicode.serve.store.FeedbackStore.purge_texts`). The service purges at
start-up and every ``PURGE_EVERY_S`` seconds; ``clinicode feedback purge`` does it on demand."""

from __future__ import annotations

import asyncio
import logging

from ..store import FeedbackStore, retention_cutoff

log = logging.getLogger("clinicode.serve")

PURGE_EVERY_S = 3600.0


def purge_once(store: FeedbackStore, days: int) -> int:
    n = store.purge_texts(retention_cutoff(days))
    if n:
        log.info("retention: blanked the text of %d note version(s) older than %d day(s)", n, days)
    return n


async def purge_forever(store: FeedbackStore, days: int, every_s: float = PURGE_EVERY_S) -> None:
    """Purge now and then every ``every_s`` seconds until cancelled (off the event loop)."""
    while True:
        try:
            await asyncio.to_thread(purge_once, store, days)
        except Exception as exc:  # a database hiccup must not end the loop
            log.warning("retention purge failed: %s", type(exc).__name__)
        await asyncio.sleep(every_s)
