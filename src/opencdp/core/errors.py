"""Domain errors carrying the spec's status, message and developerMessage.

Surfaces turn them into the shared error body; the core raises them so that the same rule answers the
same words whether it was broken by a REST call, an event or a batch line.
"""

from __future__ import annotations


class ApiError(Exception):
    """A failure the client caused (4xx) or one it must be told about, in the spec's words."""

    status: int = 400

    def __init__(self, message: str, developer_message: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.developer_message = developer_message or message
        if status is not None:
            self.status = status


class MissingField(ApiError):
    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: may not be null.", f"Attribute {field} is invalid (may not be null).")
        self.field = field


class InvalidField(ApiError):
    def __init__(self, field: str, reason: str = "not a valid value") -> None:
        super().__init__(f"{field}: not a valid value", f"Attribute {field} is invalid ({reason}).")
        self.field = field
        self.reason = reason


class UnsupportedField(ApiError):
    def __init__(self, field: str) -> None:
        super().__init__(f"Attribute {field} is not supported", f"Attribute {field} is invalid (not supported).")
        self.field = field


class ImmutableField(ApiError):
    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: cannot be updated.", f"Attribute {field} is invalid (cannot be updated).")


class InvalidParameter(ApiError):
    def __init__(self, param: str, reason: str = "not a valid value") -> None:
        super().__init__(f"{param}: not a valid value", f"Parameter {param} is invalid ({reason}).")


class ExtensionRuleError(ApiError):
    """The data-extension rules of rest-api.md §5.7 answer a generic message and say why underneath. The
    batch log says it with a path instead: `reason`, and the `attribute` of the group it is about, if one."""

    def __init__(self, developer_message: str, reason: str, attribute: str | None = None) -> None:
        super().__init__("Validation error", developer_message)
        self.reason, self.attribute = reason, attribute


class NotFound(ApiError):
    status = 404

    def __init__(self, developer_message: str) -> None:
        super().__init__("The specified resource does not exist.", developer_message)


class Conflict(ApiError):
    status = 409


class Unavailable(ApiError):
    """Not now: the client should try again after `retry_after` seconds (503 with Retry-After)."""

    status = 503

    def __init__(self, message: str, developer_message: str, retry_after: int = 1) -> None:
        super().__init__(message, developer_message)
        self.retry_after = retry_after


class Unparseable(ApiError):
    def __init__(self, developer_message: str) -> None:
        super().__init__("Unable to parse JSON string", developer_message)


class NeedsDatabase(Exception):
    """A check that what this process remembers could not decide: it is run again with a connection."""
