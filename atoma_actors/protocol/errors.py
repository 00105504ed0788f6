"""The wire form of an error (`StandardError`) and the typed exceptions Python callers catch.

Exception tree (every class maps onto one wire error kind)::

    AtomaError
    ├── ValidationError        kind "validation"   bad input, malformed body, bad query or cursor
    ├── AuthError              kind "auth"
    ├── LimitsError            kind "limits"       too big, too many, queue full
    ├── ConflictError          kind "conflict"     stale version; carries `current`
    ├── NotFoundError          kind "not_found"
    ├── AdapterError           kind "adapter"      the backend could not do it
    │   └── BackendUnavailable                     retryable: crashed, timed out, circuit open
    └── InternalError          kind "internal"
        └── ClientClosed                           the client was closed

Must not import anything else from atoma_actors but `protocol._base`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ._base import LenientModel, WireModel

__all__ = [
    "AdapterError",
    "AtomaError",
    "AuthError",
    "BackendUnavailable",
    "ClientClosed",
    "ConflictDetails",
    "ConflictError",
    "CurrentValue",
    "ErrorKind",
    "InternalError",
    "LimitsError",
    "NotFoundError",
    "StandardError",
    "ValidationError",
    "error_from_standard",
]

ErrorKind = Literal["validation", "auth", "limits", "conflict", "not_found", "adapter", "internal"]


class CurrentValue(WireModel):
    """What the server holds now, sent with a conflict (`current?: {value?, version?}`)."""

    value: dict[str, Any] | None = None
    version: int | None = None


class ConflictDetails(LenientModel):
    resource: str | None = None
    id: str | None = None
    current_version: int | None = None
    hint: Literal["rebase", "server-wins", "manual"] | None = None


class StandardError(WireModel):
    """`{code, message, kind, retryable?, details?}` as it travels on the wire."""

    code: str
    message: str
    kind: ErrorKind
    retryable: bool | None = None
    details: dict[str, Any] | None = Field(default=None)


class AtomaError(Exception):
    """Base of every error this library raises on purpose."""

    kind: ErrorKind = "internal"
    default_code: str = "INTERNAL"
    retryable_default: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retryable = self.retryable_default if retryable is None else retryable
        self.details = details

    @property
    def error(self) -> StandardError:
        """This error in its wire form."""
        return StandardError(
            code=self.code,
            message=self.message,
            kind=self.kind,
            retryable=self.retryable,
            details=self.details,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class ValidationError(AtomaError):
    kind = "validation"
    default_code = "INVALID_REQUEST"


class AuthError(AtomaError):
    kind = "auth"
    default_code = "UNAUTHORIZED"


class LimitsError(AtomaError):
    kind = "limits"
    default_code = "LIMIT_EXCEEDED"


class ConflictError(AtomaError):
    """A stale `baseVersion`/`expectedVersion`, or a create of an existing id."""

    kind = "conflict"
    default_code = "CONFLICT"

    def __init__(
        self,
        message: str,
        *,
        current: CurrentValue | None = None,
        code: str | None = None,
        retryable: bool | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, retryable=retryable, details=details)
        self.current = current


class NotFoundError(AtomaError):
    kind = "not_found"
    default_code = "NOT_FOUND"


class AdapterError(AtomaError):
    kind = "adapter"
    default_code = "ADAPTER_ERROR"


class BackendUnavailable(AdapterError):
    """The backend crashed, hung past its deadline, or its circuit is open. Retryable."""

    default_code = "BACKEND_UNAVAILABLE"
    retryable_default = True


class InternalError(AtomaError):
    kind = "internal"
    default_code = "INTERNAL"


class ClientClosed(InternalError):
    default_code = "CLIENT_CLOSED"


_BY_KIND: dict[str, type[AtomaError]] = {
    "validation": ValidationError,
    "auth": AuthError,
    "limits": LimitsError,
    "conflict": ConflictError,
    "not_found": NotFoundError,
    "adapter": AdapterError,
    "internal": InternalError,
}


def error_from_standard(error: StandardError, *, current: CurrentValue | None = None) -> AtomaError:
    """The typed exception for a wire error (a retryable adapter error is `BackendUnavailable`)."""
    cls = _BY_KIND.get(error.kind, InternalError)
    if cls is AdapterError and error.retryable:
        cls = BackendUnavailable
    kwargs: dict[str, Any] = {
        "code": error.code,
        "retryable": error.retryable,
        "details": error.details,
    }
    if cls is ConflictError:
        return ConflictError(error.message, current=current, **kwargs)
    return cls(error.message, **kwargs)
