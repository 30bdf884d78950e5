"""A background loop: the converge worker and the reconcile schedule both are one."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class BackgroundLoop:
    """A daemon thread calling `round()` until `stop()`, which waits for the round in
    progress. After a round that found nothing to do it waits `poll_seconds`; after a
    busy one it goes on at once. A failing round is logged, and the next one tries again
    (the store or Gogs may be briefly unavailable)."""

    def __init__(self, name: str, poll_seconds: float) -> None:
        self._poll = poll_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def round(self) -> bool:
        """One round of work; True when there may be more to do right away."""
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.round()
            except Exception:
                log.exception("%s round failed", self._thread.name)
                busy = False
            if not busy:
                self._stopping.wait(self._poll)
