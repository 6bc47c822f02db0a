"""The reconcile function's entry points: the sweeper (sweep.py) and the whole-bucket audit
(scan.py) over the configured bucket and store, and `timer_handler`, which
functions/reconcile/index.py calls on each timer trigger. The command line is `tools.reconcile`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.credentials import Credentials, resolve_credentials
from shared.objects import Objects, OssObjects
from shared.reconcile import sweep as sweeper
from shared.reconcile.report import Report
from shared.reconcile.scan import reconcile
from shared.reconcile.settings import ReconcileSettings
from shared.records import Store, open_store

TIMER_BUDGET_SECONDS = 480.0  # the function's timeout is 600 s: stop starting work well before


def run(
    settings: ReconcileSettings,
    credentials: Credentials,
    *,
    objects: Objects | None = None,
    store: Store | None = None,
    **options: Any,
) -> Report:
    """A whole-bucket audit with the configured bucket and store (both injectable for tests)."""
    return reconcile(
        objects if objects is not None else OssObjects(settings.oss, credentials),
        store if store is not None else open_store(settings.records, credentials),
        bucket=settings.oss.bucket,
        template=settings.key_prefix,
        allowed_types=settings.allowed_types,
        limits=settings.limits,
        verify=settings.verify,
        **options,
    )


def run_sweep(
    settings: ReconcileSettings,
    credentials: Credentials,
    *,
    objects: Objects | None = None,
    store: Store | None = None,
    **options: Any,
) -> sweeper.SweepReport:
    """The sweeper (sweep.py) with the configured bucket and store (both injectable for tests)."""
    return sweeper.sweep(
        objects if objects is not None else OssObjects(settings.oss, credentials),
        store if store is not None else open_store(settings.records, credentials),
        limits=settings.limits,
        allowed_types=settings.allowed_types,
        verify=settings.verify,
        **options,
    )


def timer_handler(
    event: bytes | str | None, context: Any, settings: ReconcileSettings, environ: Mapping[str, str]
) -> dict[str, Any]:
    """FC timer trigger: one sweep of the ended grants within the function's time budget."""
    del event  # {"triggerTime", "triggerName", "payload"}: the schedule is all a run needs
    credentials = resolve_credentials(
        context, environ, settings.oss.access_key_id, settings.oss.access_key_secret
    )
    return run_sweep(settings, credentials, budget=TIMER_BUDGET_SECONDS).summary()
