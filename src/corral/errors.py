"""The errors Corral raises, grouped by who has to act.

    CorralError                  root: catch this to catch everything Corral raises
    +-- DefinitionError          the user's schema, audience or workspace is wrong
    |   +-- UnknownReferenceError    names a column, model, trait or audience that does not exist
    |   +-- AudienceCycleError       audiences refer to each other in a loop
    +-- WarehouseError           the warehouse refused a query or cannot be reached
    +-- DestinationError         a destination refused a request or cannot be reached
    |   +-- TransientDestinationError  it may work later (rate limits, outages, timeouts)
    +-- AccessError              who is asking may not do this
    |   +-- AuthenticationError      no valid session, token or password
    |   +-- PermissionDeniedError    signed in, but without the grant the action needs
    +-- ConflictError            the thing changed since it was read (a stale version)
    +-- ConfigurationError       Corral is set up wrongly (a missing driver, a bad URL)
    +-- InternalError            a bug in Corral itself

Every message says what was wrong, where, and what fixes it.
"""

from __future__ import annotations


class CorralError(Exception):
    """Root of every error Corral raises on purpose."""

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}\n  hint: {self.hint}" if self.hint else text

    def to_dict(self) -> dict[str, str | None]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "where": self.where,
            "hint": self.hint,
        }


class DefinitionError(CorralError):
    """A schema, audience or workspace definition is invalid; the user must change it."""


class UnknownReferenceError(DefinitionError):
    """A definition names something that does not exist."""


class AudienceCycleError(DefinitionError):
    """Audiences include each other in a loop."""


class WarehouseError(CorralError):
    """The warehouse refused a query or could not be reached."""


class DestinationError(CorralError):
    """A destination refused a request for good (bad credentials, a missing list)."""


class TransientDestinationError(DestinationError):
    """A destination failed in a way that may pass: a rate limit, a 5xx, a timeout.

    `retry_after` is how long the destination asked us to wait, in seconds, if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
    ):
        self.retry_after = retry_after
        super().__init__(message, where=where, hint=hint)


class AccessError(CorralError):
    """The caller may not do what it asked."""


class AuthenticationError(AccessError):
    """No valid session, API token or password."""


class PermissionDeniedError(AccessError):
    """The caller is known but lacks the grant the action needs."""


class ConflictError(CorralError):
    """An update was based on a version that is no longer current."""


class ConfigurationError(CorralError):
    """Corral itself is configured wrongly: a missing driver, a bad connection URL."""


class InternalError(CorralError):
    """A bug in Corral; please report it with the message."""
