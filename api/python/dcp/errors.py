"""dcp's exceptions: one class per dcp status code.

Every error a dcp call raises is a :class:`DcpError`; the subclass says what
kind of error it is, with Python's matching built-in exception as a second base
where one exists, so ``except ValueError`` catches bad input and
``except FileNotFoundError`` an unknown step. The message is the C++ core's,
whole (it names the key, offset, rank store and path). A collective call raises
the same exception with the same message on every rank.
"""


class DcpError(Exception):
    """Base class of every dcp error."""

    code = -1


class InvalidArgumentError(DcpError, ValueError):
    """Bad input: a view that disagrees with its declaration, overlapping shards, ..."""

    code = 1


class NotFoundError(DcpError, FileNotFoundError):
    """An unknown step, tensor key, object cell or store."""

    code = 2


class AlreadyExistsError(DcpError, FileExistsError):
    """A step that is already committed (and overwrite was not asked for)."""

    code = 3


class FailedPreconditionError(DcpError, RuntimeError):
    """The store is not in a state that allows the call (read-only, busy, not a dcp store)."""

    code = 4


class DataLossError(DcpError, OSError):
    """Corrupt or missing data: a damaged record, manifest or rank store."""

    code = 5


class DcpIOError(DcpError, OSError):
    """An I/O error (a full disk, a failed collective)."""

    code = 6


class InternalError(DcpError, RuntimeError):
    """A bug in dcp."""

    code = 7


class UnimplementedError(DcpError, NotImplementedError):
    """Not supported by this build."""

    code = 8


_BY_CODE = {c.code: c for c in (InvalidArgumentError, NotFoundError, AlreadyExistsError, FailedPreconditionError,
                                DataLossError, DcpIOError, InternalError, UnimplementedError)}


def error_class(code):
    """The exception class of a dcp status code (used by the extension)."""
    return _BY_CODE.get(code, DcpError)


__all__ = ["DcpError", "InvalidArgumentError", "NotFoundError", "AlreadyExistsError", "FailedPreconditionError",
           "DataLossError", "DcpIOError", "InternalError", "UnimplementedError"]
