"""dcp's exceptions: one class per dcp status code.

Every error a dcp call raises is a :class:`DcpError`; the subclass says what
kind of error it is, with Python's matching built-in exception as a second base
where one exists, so ``except ValueError`` catches bad input and
``except FileNotFoundError`` an unknown step. The message is the C++ core's,
whole (it names the key, offset, rank store and path). A collective call raises
the same exception with the same message on every rank.

A rank whose own arguments fail to convert (a value only pickle could store, a
tensor that disagrees with its declaration) still joins the collective call
with that error, so the others do not wait for it; every rank then raises it,
naming that rank. A TypeError keeps its type across ranks: it travels as an
invalid argument whose message says "TypeError: ", and is raised as
:class:`InvalidTypeError` (both an InvalidArgumentError and a TypeError).
"""

import re


class DcpError(Exception):
    """Base class of every dcp error."""

    code = -1


class InvalidArgumentError(DcpError, ValueError):
    """Bad input: a view that disagrees with its declaration, overlapping shards, ..."""

    code = 1


class InvalidTypeError(InvalidArgumentError, TypeError):
    """Bad input of the wrong type: a value only pickle could store, a state dict that is not a dict."""

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


# A TypeError's message, also behind the annotations a collective adds ("put of step 2: rank 1: ").
_TYPE_ERROR = re.compile(r"(?:^|: )TypeError: ")


def error_class(code, message=""):
    """The exception class of a dcp status code and message (used by the extension)."""
    if code == InvalidArgumentError.code and _TYPE_ERROR.search(message):
        return InvalidTypeError
    return _BY_CODE.get(code, DcpError)


def status_of(error):
    """(code, message) of an exception this rank raised converting its arguments: what the
    extension hands the core as this rank's status in the collective call."""
    if isinstance(error, DcpError):
        return (error.code if error.code in _BY_CODE else InternalError.code), str(error)
    if isinstance(error, TypeError):
        return InvalidArgumentError.code, f"TypeError: {error}"
    if isinstance(error, ValueError):
        return InvalidArgumentError.code, str(error)
    return InvalidArgumentError.code, f"{type(error).__name__}: {error}"


__all__ = ["DcpError", "InvalidArgumentError", "InvalidTypeError", "NotFoundError", "AlreadyExistsError",
           "FailedPreconditionError", "DataLossError", "DcpIOError", "InternalError", "UnimplementedError"]
