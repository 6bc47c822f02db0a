"""The Tablestore SDK client, held to OSS's 5 s callback limit, and what its failures mean to us.

A 1 s socket timeout and no urllib3 connect retries (`build_client`); at most two retries of
transient codes within 0.3 s (`ShortRetryPolicy`); a per-operation deadline, after which no
request starts, and SDK and network faults mapped to 503 (`operation`), except a conditional
write's failed condition (`ConditionFailed`), which the record store and the ledger decide on.
This module imports the SDK: only the tablestore backend imports it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import tablestore
import urllib3
from tablestore.retry import RetryPolicy

from shared import logs
from shared.credentials import Credentials
from shared.errors import Unavailable
from shared.settings import RecordsSettings

SOCKET_TIMEOUT_SECONDS = 1.0  # per connect and per read; Tablestore answers in milliseconds
OPERATION_BUDGET_SECONDS = 2.0  # no new request starts after this; OSS waits 5 s in all
MAX_RETRIES = 2
FIRST_RETRY_DELAY = 0.1  # then 0.2: at most 0.3 s of sleeping per request
CONDITION_FAILED = "OTSConditionCheckFail"
CONDITIONAL_APIS = frozenset({"PutRow", "UpdateRow"})  # elsewhere that code would be a store fault
RETRIABLE_CODES = frozenset(
    {
        "OTSServerBusy",
        "OTSTimeout",
        "OTSServerUnavailable",
        "OTSRowOperationConflict",
        "OTSPartitionUnavailable",
        "OTSInternalServerError",
        "OTSNotEnoughCapacityUnit",
        "OTSOperationThrottled",
    }
)

# The SDK logs every failed request (each duplicate's condition failure, too) at ERROR level; we
# log one structured line per failure ourselves, so its logger stays quiet.
SDK_LOGGER = "oss_direct_upload.tablestore_sdk"
_sdk_logger = logging.getLogger(SDK_LOGGER)
_sdk_logger.addHandler(logging.NullHandler())
_sdk_logger.propagate = False

NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)  # OSError covers socket timeouts


class ConditionFailed(Exception):
    """The row's existence, version or state was not what the conditional write expected."""


class ShortRetryPolicy(RetryPolicy):  # type: ignore[misc] # the SDK ships no types
    """At most 2 retries, 0.1 s then 0.2 s, only for transient codes and within the deadline."""

    max_retry_times = MAX_RETRIES

    def __init__(self) -> None:
        self._local = threading.local()

    def start(self, budget: float) -> float:
        """Open this thread's operation deadline; returns it (monotonic seconds)."""
        deadline: float = time.monotonic() + budget
        self._local.deadline = deadline
        return deadline

    def should_retry(self, retry_times: int, exception: Any, api_name: str) -> bool:
        if retry_times >= self.max_retry_times:
            return False
        if getattr(exception, "code", None) not in RETRIABLE_CODES:
            return False
        deadline: float | None = getattr(self._local, "deadline", None)
        delay = self.get_retry_delay(retry_times, exception, api_name)
        return deadline is None or time.monotonic() + delay < deadline

    def get_retry_delay(self, retry_times: int, exception: Any, api_name: str) -> float:
        delay: float = FIRST_RETRY_DELAY * 2**retry_times
        return delay


def build_client(
    settings: RecordsSettings, credentials: Credentials, retry_policy: RetryPolicy
) -> Any:
    """OTSClient with a short socket timeout, our retry policy and no urllib3 connect retries."""
    client = tablestore.OTSClient(
        settings.tablestore_endpoint,
        credentials.access_key_id,
        credentials.access_key_secret.value,
        settings.tablestore_instance,
        sts_token=credentials.security_token,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        retry_policy=retry_policy,
        logger_name=SDK_LOGGER,
    )
    # urllib3 would retry a failed connect three times (4 × the timeout): one attempt only; the
    # SDK's retry policy above decides about retries.
    pool = getattr(getattr(client, "connection", None), "pool", None)
    if isinstance(pool, urllib3.PoolManager):
        pool.connection_pool_kw["retries"] = urllib3.Retry(
            total=0, redirect=False, raise_on_status=False
        )
    return client


@contextmanager
def operation(retry_policy: ShortRetryPolicy, budget: float) -> Iterator[Callable[..., Any]]:
    """One store operation: a deadline for all its requests; SDK and network faults → 503."""
    deadline = retry_policy.start(budget)

    def call(api: str, method: Callable[..., Any], *args: Any) -> Any:
        if time.monotonic() >= deadline:
            logs.warning("records_unavailable", backend="tablestore", api=api, error="deadline")
            raise Unavailable("the record store is too slow; try again")
        try:
            return method(*args)
        except tablestore.OTSServiceError as exc:
            if exc.code == CONDITION_FAILED and api in CONDITIONAL_APIS:
                raise ConditionFailed(api) from exc
            logs.warning(
                "records_unavailable",
                backend="tablestore",
                api=api,
                error=exc.code,
                status=exc.http_status,
                detail=exc.message,
                ots_request_id=exc.request_id,
            )
            raise Unavailable(f"the record store is unavailable ({exc.code}); try again") from exc
        except tablestore.OTSClientError as exc:
            logs.warning(
                "records_unavailable",
                backend="tablestore",
                api=api,
                error="OTSClientError",
                detail=str(exc),
            )
            raise Unavailable("the record store is unavailable; try again") from exc
        except NETWORK_ERRORS as exc:
            logs.warning(
                "records_unavailable",
                backend="tablestore",
                api=api,
                error=type(exc).__name__,
                detail=str(exc),
            )
            raise Unavailable("the record store is unreachable; try again") from exc

    yield call
