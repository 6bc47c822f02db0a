"""The grant ledger (DESIGN.md "The grant ledger"): every grant we issue, and each user's quota row.

Both backends run the arithmetic below over their own primitives, as records run write.py:
a user's usage row (used and reserved bytes/files, the rate window and a version) is read,
changed here, and written back only if nobody wrote it in between (a transaction in SQLite, a
version check in Tablestore). Invariant, under any concurrency: used + reserved ≤ limit.

A multipart grant is an upload session (DESIGN "Multipart uploads"): its id is OSS's UploadId,
its target the key, `max_bytes` the declared size, and it also keeps `part_size` and the
client's `file_name` (the record's, through the grant token built at Complete).

- Sign (`open_grant`): admit against the rate window, reserve what the grant can use (exact and
  multipart: its declared bytes and one file; prefix: nothing, its uploads are charged one by one),
  then write the grant row. A grant is never returned without its row.
- Callback / sweeper: an exact grant is `settle`d once (open → used): its reservation becomes
  usage; a prefix upload is `charge`d (refused with QuotaExceeded when it would pass the quota).
- Expiry (sweeper) settles open → expired, giving the reservation back; a delete `refund`s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

from shared.errors import QuotaExceeded, TooManyRequests
from shared.settings import Limits

__all__ = ["GrantStore", "LedgerGrant", "Limits", "Usage"]

EXACT, PREFIX, MULTIPART = "exact", "prefix", "multipart"
MODES = (EXACT, PREFIX, MULTIPART)
OPEN, USED, REJECTED, EXPIRED = "open", "used", "rejected", "expired"
STATES = (OPEN, USED, REJECTED, EXPIRED)
WINDOW_SECONDS = 60
MAX_ATTEMPTS = 12  # optimistic writes of one usage row before the caller is told to come back


@dataclass(frozen=True)
class LedgerGrant:
    """One issued grant: who, which key (exact, multipart) or prefix, how many bytes, until when."""

    owner: str
    grant_id: str
    mode: str
    target: str  # the key, or the prefix (ends in '/')
    bucket: str
    max_bytes: int  # declared size (exact, multipart) or the per-file maximum (prefix)
    expires_at: int  # Unix seconds
    created_at: int  # milliseconds
    state: str = OPEN
    part_size: int = 0  # multipart: the part size chosen at creation (a setting change never
    # breaks an upload in flight); 0 for PostObject grants
    file_name: str = ""  # multipart: the client's file name, for the grant token at Complete

    @property
    def reserved_bytes(self) -> int:
        """What the grant holds back from the quota while open."""
        return 0 if self.mode == PREFIX else self.max_bytes

    @property
    def reserved_files(self) -> int:
        return 0 if self.mode == PREFIX else 1

    def covers(self, bucket: str, key: str) -> bool:
        if bucket != self.bucket:
            return False
        if self.mode == PREFIX:
            return key.startswith(self.target) and len(key) > len(self.target)
        return key == self.target


@dataclass(frozen=True)
class Usage:
    """One user's quota row."""

    used_bytes: int = 0
    used_files: int = 0
    reserved_bytes: int = 0
    reserved_files: int = 0
    rate_window: int = 0  # the minute (Unix seconds // 60) `rate_count` counts grants in
    rate_count: int = 0
    version: int = 0  # bumped by every write: the optimistic check


class GrantStore(Protocol):
    """The ledger interface both record stores implement (SQLite, Tablestore)."""

    def open_grant(self, grant: LedgerGrant, limits: Limits, now: float) -> None:
        """Rate-admit, reserve and write `grant`; TooManyRequests / QuotaExceeded / Unavailable."""

    def get_grant(self, owner: str, grant_id: str) -> LedgerGrant | None:
        """The owner's grant with that id (another owner's grant id reads as None)."""

    def usage(self, owner: str) -> Usage:
        """The owner's usage row (zeros when the owner never signed)."""

    def settle(self, owner: str, grant_id: str, state: str, size: int = 0) -> bool:
        """Move an open grant to `state` (used with `size` bytes, rejected, expired), giving its
        reservation back and, for used, adding `size` and one file; False if it was not open."""

    def charge(self, owner: str, size: int, files: int, limits: Limits) -> None:
        """Add one upload outside a reservation (a prefix grant's); QuotaExceeded if it would pass."""

    def refund(self, owner: str, size: int, files: int) -> None:
        """Take committed usage back (a deleted object, an undone charge); never below zero."""

    def ended_grants(self, before: int, limit: int) -> list[LedgerGrant]:
        """Open grants whose expiry is before `before` (Unix seconds), oldest first."""

    def grants_for(self, bucket: str, target: str) -> list[LedgerGrant]:
        """Every grant (any state) whose key or prefix is exactly `target`."""


# --- the arithmetic both backends apply ---------------------------------------------------------


def admitted(usage: Usage, grant: LedgerGrant, limits: Limits, now: float) -> Usage:
    """The usage row after admitting `grant`, or TooManyRequests / QuotaExceeded."""
    window = int(now) // WINDOW_SECONDS
    count = usage.rate_count if usage.rate_window == window else 0
    if limits.grants_per_minute is not None and count >= limits.grants_per_minute:
        raise TooManyRequests(
            f"more than {limits.grants_per_minute} grants a minute; try again shortly",
            retry_after=retry_after(now),
        )
    reserved = replace(
        usage,
        reserved_bytes=usage.reserved_bytes + grant.reserved_bytes,
        reserved_files=usage.reserved_files + grant.reserved_files,
        rate_window=window,
        rate_count=count + 1,
        version=usage.version + 1,
    )
    # A prefix grant reserves nothing, but one that could not take even one file is refused now.
    check_room(reserved, limits, extra_bytes=1 if grant.mode == PREFIX else 0)
    check_room(reserved, limits, extra_files=1 if grant.mode == PREFIX else 0)
    return reserved


def settled(usage: Usage, grant: LedgerGrant, state: str, size: int) -> Usage:
    """The usage row after an open grant ends: reservation released, the upload counted if used."""
    used = state == USED
    return replace(
        usage,
        used_bytes=usage.used_bytes + (size if used else 0),
        used_files=usage.used_files + (1 if used else 0),
        reserved_bytes=max(0, usage.reserved_bytes - grant.reserved_bytes),
        reserved_files=max(0, usage.reserved_files - grant.reserved_files),
        version=usage.version + 1,
    )


def charged(usage: Usage, size: int, files: int, limits: Limits) -> Usage:
    """The usage row with one more upload outside any reservation; QuotaExceeded if it passes."""
    after = replace(
        usage,
        used_bytes=usage.used_bytes + size,
        used_files=usage.used_files + files,
        version=usage.version + 1,
    )
    if size > 0 or files > 0:  # an overwrite by a smaller object only ever frees room
        check_room(after, limits)
    return after


def refunded(usage: Usage, size: int, files: int) -> Usage:
    return replace(
        usage,
        used_bytes=max(0, usage.used_bytes - size),
        used_files=max(0, usage.used_files - files),
        version=usage.version + 1,
    )


def check_room(usage: Usage, limits: Limits, *, extra_bytes: int = 0, extra_files: int = 0) -> None:
    """used + reserved (+ what is about to come) must stay within each limit."""
    if limits.bytes is not None and (
        usage.used_bytes + usage.reserved_bytes + extra_bytes > limits.bytes
    ):
        raise QuotaExceeded(f"this would pass your storage quota of {limits.bytes} bytes")
    if limits.files is not None and (
        usage.used_files + usage.reserved_files + extra_files > limits.files
    ):
        raise QuotaExceeded(f"this would pass your quota of {limits.files} files")


def retry_after(now: float) -> int:
    """Whole seconds until the next rate window opens (at least 1)."""
    return max(1, math.ceil((int(now) // WINDOW_SECONDS + 1) * WINDOW_SECONDS - now))


def contended() -> TooManyRequests:
    """Too many writers on one user's row at once: refusing is safe, over-admitting is not."""
    return TooManyRequests("too many requests for this user at once; try again", retry_after=1)


def check_grant(grant: LedgerGrant) -> LedgerGrant:
    """Refuse a grant no backend can store (a programming error, never user input)."""
    if grant.mode not in MODES or grant.state not in STATES:
        raise ValueError(f"bad grant mode/state {grant.mode!r}/{grant.state!r}")
    if not grant.owner or not grant.grant_id or not grant.target or grant.max_bytes < 1:
        raise ValueError("a grant needs an owner, an id, a target and max_bytes ≥ 1")
    if (grant.mode == MULTIPART) != (grant.part_size > 0) or grant.part_size < 0:
        raise ValueError("a multipart grant has a part size ≥ 1; no other grant has one")
    return grant
