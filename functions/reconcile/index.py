"""Reconcile function (FC timer trigger): one sweep of the grants that ended without a record —
record the upload a lost callback owed, or release the reservation (docs/reliability.md).

A thin adapter over `shared.reconcile`; settings are read once, at start-up. FC 2.0 and FC 3.0
both call an event function as `handler(event, context)`: the two names are one function.
"""

from __future__ import annotations

import json
import os
from typing import Any

from shared.reconcile.app import timer_handler
from shared.reconcile.settings import ReconcileSettings

settings = ReconcileSettings.from_env(os.environ)


def _handler(event: bytes | str | None, context: Any) -> str:
    """The run's summary as JSON text: the invocation result FC records."""
    return json.dumps(timer_handler(event, context, settings, os.environ))


handler = _handler
event_handler = _handler
