"""One error hierarchy: every failure a caller can see carries its HTTP status and stable code.

`shared.http` is the one place that turns these into responses; anything else that escapes a
handler is a bug and is answered as a 500 without details.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A setting is missing or malformed; raised at start-up and names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class AppError(Exception):
    """Base of every error answered to a caller as `{"Status": "Error", "code", "message"}`."""

    status = 500
    code = "InternalError"
    headers: tuple[tuple[str, str], ...] = ()  # sent with the answer (WWW-Authenticate, Allow…)
    answer = "Error"  # the answer's "Status"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(AppError):
    status = 400
    code = "BadRequest"


class Unauthorized(AppError):
    status = 401
    code = "Unauthorized"
    headers = (("WWW-Authenticate", 'Bearer realm="oss-direct-upload"'),)


class SignatureInvalid(AppError):
    """The callback's RSA signature (or its Authorization header) does not hold."""

    status = 401
    code = "SignatureInvalid"


class KeyUrlUntrusted(SignatureInvalid):
    """x-oss-pub-key-url names a key we will not fetch or use; decided before any network I/O."""

    code = "KeyUrlUntrusted"


class Forbidden(AppError):
    status = 403
    code = "Forbidden"


class QuotaExceeded(Forbidden):
    """The caller's storage quota (bytes or files) has no room for this upload."""

    code = "QuotaExceeded"


class ContentRejected(AppError):
    """An upload whose stored content is not what the grant allows (DESIGN "Hardening",
    "Verification"); answered as `Rejected` once the object is deleted."""

    status = 422
    code = "ContentRejected"


class GrantInvalid(AppError):
    """Authentic OSS callback, but it does not match a grant we issued."""

    status = 403
    code = "GrantInvalid"


class NotFound(AppError):
    status = 404
    code = "NotFound"


class MethodNotAllowed(AppError):
    """RFC 9110 §15.5.6: the answer names the methods the resource allows."""

    status = 405
    code = "MethodNotAllowed"

    def __init__(self, message: str, *, allow: str | None = None) -> None:
        super().__init__(message)
        if allow is not None:
            self.headers = (("Allow", allow),)


class Conflict(AppError):
    status = 409
    code = "Conflict"


class TooManyRequests(AppError):
    """RFC 6585 §4: over the per-user grant rate; Retry-After says when to come back."""

    status = 429
    code = "TooManyRequests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = (("Retry-After", str(retry_after)),)


class TooLarge(AppError):
    status = 413
    code = "TooLarge"


class Unavailable(AppError):
    """A dependency (record store, key host) is down or slow; safe to try again later."""

    status = 503
    code = "Unavailable"


class Rejected(AppError):
    """An authentic upload we will not keep (the object is deleted, nothing recorded).

    Answered 200 with `"Status": "Rejected"` so that OSS relays the reason to the browser instead
    of turning it into a 203 CallbackFailed (DESIGN.md, Verification)."""

    status = 200
    code = "Rejected"
    answer = "Rejected"

    def __init__(self, cause: AppError) -> None:
        super().__init__(cause.message)
        self.code = cause.code
