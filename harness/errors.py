"""Errors harness raises for bad input.

Every message says what was expected, what was found and, where it can, how to
fix it. The command line prints these as one line; the server answers them as
``{"detail": message}``.
"""


class HarnessError(Exception):
    """Base class: a problem the user can fix, with a message that says how.

    Parameters
    ----------
    message : str
        What went wrong and how to fix it, in words for whoever made the request: over
        HTTP that may be a student, so no teacher command and no server path.
    hint : str, optional
        For the teacher on the server machine only: the path or command that fixes it.
        The command line prints it after the message; the server never sends it.
    """

    def __init__(self, message: str = "", *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class SpecError(HarnessError):
    """A competition.toml that is missing a key or has a bad value."""

    def __init__(self, key, problem, source=None):
        self.key = key
        self.problem = problem
        where = f"{source}: " if source else ""
        super().__init__(f"{where}[{key}] {problem}")


class DataError(HarnessError):
    """A labeled table that does not fit its competition.toml."""


class SubmissionError(HarnessError):
    """A submission file that cannot be scored.

    The message uses only what students already have (the test ids and the
    columns), so it never tells which ids are public or private.
    """


class PreparedError(HarnessError):
    """A competition that is not prepared, or prepared from another spec."""


class NotFoundError(HarnessError):
    """An unknown competition, team, submission or file (HTTP 404)."""


class AuthError(HarnessError):
    """A missing or bad token (HTTP 401). The message never says which part was wrong."""


class ForbiddenError(HarnessError):
    """Closed, past the deadline, or not allowed for this caller (HTTP 403)."""


class LimitError(HarnessError):
    """The daily or total submission limit is reached, or too many refused files were sent
    too fast (HTTP 429).

    ``retry_after`` is the number of seconds until a try can succeed, when it is known
    (the server sends it as the ``Retry-After`` header); None when it never will (the
    total limit).
    """

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class TooLargeError(HarnessError):
    """An upload over the competition's max_upload_mb (HTTP 413)."""


# The HTTP status each error becomes (server) and comes back as (client); the first
# match in this order wins, anything else that is a HarnessError is a 400.
HTTP_STATUS = (
    (AuthError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (PreparedError, 404),      # a competition that is not prepared is unknown to students
    (TooLargeError, 413),
    (LimitError, 429),
)


def http_status(exc: HarnessError) -> int:
    """The HTTP status code the server answers ``exc`` with (400 when none is listed)."""
    for cls, status in HTTP_STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def error_for_status(status: int, detail: str) -> HarnessError:
    """The error a client raises for a server's ``status`` answer and its ``detail``."""
    for cls, code in HTTP_STATUS:
        if code == status:
            return cls(detail)
    return HarnessError(detail)


class StorageError(HarnessError):
    """The server could not store an upload: its disk is full (HTTP 507 Insufficient Storage).

    Nothing of the upload is kept or counted; the message tells the student to try again
    later and the teacher what to free.
    """


HTTP_STATUS = HTTP_STATUS + ((StorageError, 507),)
