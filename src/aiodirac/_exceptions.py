"""The exception tree of aiodirac.

Every failure a user can meet is one of these classes, with a message that says what to do.
Lower-level errors (httpx, sqlite3, tarfile, OSError) are translated where they happen with
``raise ... from exc`` so the cause stays visible in tracebacks.

::

    DiracError
    ├── JobDescriptionError (ValueError)        a Job setter or a JDL got a value it cannot carry
    │   ├── UnsafeValueError                    a character DIRAC's JDL grammar cannot carry
    │   └── ParametricError                     parameter sequences that do not fit together
    ├── JDLSyntaxError (ValueError)             text that is not a parseable JDL
    ├── BackendError                            a backend refused or failed a request
    │   ├── TransientError                      worth retrying: network, timeout, 429, 502-504
    │   │   ├── ServiceUnavailableError         429/502/503/504, carries ``retry_after``
    │   │   └── NetworkError                    connection refused/reset, timeout
    │   ├── AuthenticationError                 401: no token, or a token that cannot be refreshed
    │   ├── PermissionDeniedError               403: the job belongs to someone else
    │   ├── JobNotFoundError (LookupError)      unknown job ID
    │   ├── InvalidRequestError                 400/422: the server refused what was sent
    │   ├── InvalidTransitionError              a status change DIRAC's state machine refuses
    │   ├── NotSupportedError                   the server has no endpoint for this
    │   └── LocalBackendError                   the local store or agent failed
    │       └── StoreLockedError (TransientError) the local job store stayed locked
    ├── SubmissionError                         some jobs of a submission could not be placed
    ├── TrackingTimeoutError (TimeoutError)     wait() ran out of time; carries the states so far
    ├── SandboxError                            an output sandbox could not be fetched or unpacked
    │   ├── SandboxNotAvailableError            job not final yet, no sandbox, or oversized (LFN)
    │   ├── UnsafeArchiveError                  an archive that would write outside its folder
    │   │   └── SandboxTooLargeError            more bytes than the cap (received or unpacked)
    │   ├── TemporarySpaceError                 the downloads in flight reached the disk cap
    │   └── IntegrityError                      size or checksum mismatch after retries
    ├── JournalError                            the campaign journal is unusable
    ├── ConfigurationError (ValueError)         a bad setting (backend, URL, credentials, limits, CA)
    └── InvalidArgumentError (ValueError)       a bad argument to a client call (e.g. a job ID)

Usage::

    try:
        ids = await dirac.submit(job)
    except aiodirac.DiracError as exc:
        print(exc)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Self

if TYPE_CHECKING:
    from aiodirac._job._status import JobState

__all__ = [
    "AuthenticationError",
    "BackendError",
    "ConfigurationError",
    "DiracError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "InvalidTransitionError",
    "JDLSyntaxError",
    "JobDescriptionError",
    "JobNotFoundError",
    "JournalError",
    "LocalBackendError",
    "NetworkError",
    "NotSupportedError",
    "ParametricError",
    "PermissionDeniedError",
    "SandboxError",
    "SandboxNotAvailableError",
    "SandboxTooLargeError",
    "ServiceUnavailableError",
    "StoreLockedError",
    "SubmissionError",
    "TemporarySpaceError",
    "TrackingTimeoutError",
    "TransientError",
    "UnsafeArchiveError",
    "UnsafeValueError",
]


def _rebuild(cls: type[DiracError], args: tuple[Any, ...], state: dict[str, Any]) -> DiracError:
    """Unpickle a :class:`DiracError` (see ``DiracError.__reduce__``)."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    hints = state.pop("hints", None)
    exc.__dict__.update(state)
    if hints is not None:
        exc.hints = MappingProxyType(hints)
    return exc


#: Who shows an error to a person: Python code calling the library, or the ``aiodirac`` command.
Interface = Literal["python", "cli"]


class DiracError(Exception):
    """Base class of every error aiodirac raises on purpose.

    What to do about an error can depend on where it is read: a script passes ``token=`` or
    ``verify=``, someone at the command line has options and environment variables instead. The
    message says what happened; :attr:`hints` say what to do, one per interface, and
    :meth:`explain` joins the two for the interface that shows them. ``str(exc)`` is the Python
    one.

    Attributes:
        hints: what to do, per :data:`Interface` (``"python"``, ``"cli"``); empty by default.

    Usage: ``except aiodirac.DiracError as exc: print(exc)``; the CLI prints
    ``exc.explain("cli")``.
    """

    hints: Mapping[str, str] = MappingProxyType({})

    def with_hints(self, *, python: str = "", cli: str = "") -> Self:
        """Attach what to do, said for each interface (raise the result).

        Usage: ``raise AuthenticationError("no token").with_hints(python="pass token=...",
        cli="run `dirac login`")``
        """
        self.hints = MappingProxyType(
            {name: hint for name, hint in (("python", python), ("cli", cli)) if hint}
        )
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (download helper processes): keep the hints and the
        # attributes, whatever the subclass's __init__ requires.
        state = dict(self.__dict__)
        if "hints" in state:
            state["hints"] = dict(state["hints"])
        return (_rebuild, (type(self), self.args, state))

    def explain(self, interface: Interface = "python") -> str:
        """The message followed by the hint for ``interface`` (none: the message alone).

        Usage: ``sys.stderr.write(exc.explain("cli"))``
        """
        message = super().__str__()
        hint = self.hints.get(interface, "")
        return f"{message}: {hint}" if hint and message else message or hint

    def __str__(self) -> str:
        return self.explain("python")


class JobDescriptionError(DiracError, ValueError):
    """A Job setter, or a JDL attribute, received a value it cannot accept.

    Attributes:
        attribute: the JDL attribute or setter argument concerned (e.g. ``"JobName"``).
        value: the offending value, as given.
        expected: what would have been accepted, when the setter says it (e.g. ``"a number of
            seconds >= 0"``): an interface that named the value differently (a JDL file's
            ``CPUTime``) can say it in its own words.

    Usage: ``except JobDescriptionError as exc: print(exc.attribute)``
    """

    def __init__(
        self, message: str, *, attribute: str = "", value: object = None, expected: str = ""
    ) -> None:
        super().__init__(message)
        self.attribute = attribute
        self.value = value
        self.expected = expected


class UnsafeValueError(JobDescriptionError):
    """A value holds a character that DIRAC's JDL grammar cannot carry unchanged.

    Attributes:
        character: the first character that cannot be carried.

    Usage: ``except UnsafeValueError as exc: print(exc.character, exc.attribute)``
    """

    def __init__(self, message: str, *, attribute: str, value: object, character: str) -> None:
        super().__init__(message, attribute=attribute, value=value)
        self.character = character


class ParametricError(JobDescriptionError):
    """Parameter sequences that cannot expand: different lengths, empty, unknown placeholders.

    Usage: ``except ParametricError as exc: print(exc)``
    """


class JDLSyntaxError(DiracError, ValueError):
    """Text that is not a JDL the parser understands.

    Attributes:
        position: character offset where parsing failed (-1 when unknown).

    Usage: ``except JDLSyntaxError as exc: print(exc.position)``
    """

    def __init__(self, message: str, *, position: int = -1) -> None:
        super().__init__(message)
        self.position = position


class BackendError(DiracError):
    """A backend (local or DiracX) refused or failed a request.

    Attributes:
        status_code: the HTTP status when there was one, else ``None``.
        job_ids: the jobs concerned, when known.

    Usage: ``except BackendError as exc: print(exc.status_code)``
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        job_ids: tuple[int, ...] = (),
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.job_ids = job_ids


class TransientError(BackendError):
    """A failure worth retrying later: the request may or may not have been processed.

    Attributes:
        retry_after: seconds the server asked to wait (``Retry-After``), if it said.

    Usage: ``except TransientError as exc: await anyio.sleep(exc.retry_after or 1)``
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        job_ids: tuple[int, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, job_ids=job_ids)
        self.retry_after = retry_after


class ServiceUnavailableError(TransientError):
    """The service answered 429, 502, 503 or 504.

    Usage: ``except ServiceUnavailableError as exc: print(exc.retry_after)``
    """


class NetworkError(TransientError):
    """The connection failed, was reset, or timed out.

    Usage: ``except NetworkError: ...``
    """


class AuthenticationError(BackendError):
    """No valid token (401). Log in again with ``dirac login`` or give a token.

    Usage: ``except AuthenticationError as exc: print(exc)``
    """


class PermissionDeniedError(BackendError):
    """The server refused the request for this identity (403).

    Usage: ``except PermissionDeniedError as exc: print(exc.job_ids)``
    """


class JobNotFoundError(BackendError, LookupError):
    """One or more job IDs are unknown to the backend.

    Usage: ``except JobNotFoundError as exc: print(exc.job_ids)``
    """


class InvalidRequestError(BackendError):
    """The server refused what was sent (400, 422), with its own explanation.

    Usage: ``except InvalidRequestError as exc: print(exc)``
    """


class InvalidTransitionError(BackendError):
    """DIRAC's state machine refuses this status change (e.g. killing a Done job).

    Attributes:
        current: the job's status when the change was refused.
        requested: the status that was asked for.

    Usage: ``except InvalidTransitionError as exc: print(exc.current)``
    """

    def __init__(
        self,
        message: str,
        *,
        job_ids: tuple[int, ...] = (),
        current: str = "",
        requested: str = "",
    ) -> None:
        super().__init__(message, job_ids=job_ids)
        self.current = current
        self.requested = requested


class NotSupportedError(BackendError):
    """The backend or server has no way to do this (e.g. DiracX 0.7.0 cannot return a JDL).

    Usage: ``except NotSupportedError: ...``
    """


class LocalBackendError(BackendError):
    """The local backend's store, state folder or agent failed.

    Usage: ``except LocalBackendError as exc: print(exc)``
    """


class StoreLockedError(LocalBackendError, TransientError):
    """The local job store stayed locked by another process longer than the busy timeout.

    Transient: the engine retries it.

    Usage: ``except StoreLockedError: await anyio.sleep(1)``
    """


class SubmissionError(DiracError):
    """Some jobs of a submission could not be placed; the others were.

    Attributes:
        submitted: job IDs that were created and confirmed.
        failures: one message per failed chunk, naming its jobs.

    Usage: ``except SubmissionError as exc: print(exc.submitted, exc.failures)``
    """

    def __init__(
        self, message: str, *, submitted: tuple[int, ...] = (), failures: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.submitted = submitted
        self.failures = failures


class TrackingTimeoutError(DiracError, TimeoutError):
    """``wait()`` ran out of time before every job was final.

    Attributes:
        states: the last known state of every tracked job seen so far (final or not).
        pending: the jobs that were not final (nor vanished) yet.

    Usage: ``except TrackingTimeoutError as exc: print(len(exc.pending), "still running")``
    """

    def __init__(
        self, message: str, *, states: Mapping[int, JobState], pending: tuple[int, ...]
    ) -> None:
        super().__init__(message)
        self.states = dict(states)
        self.pending = pending


class SandboxError(DiracError):
    """An output sandbox could not be fetched or unpacked.

    Attributes:
        job_id: the job concerned, when known.

    Usage: ``except SandboxError as exc: print(exc.job_id)``
    """

    def __init__(self, message: str, *, job_id: int | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class SandboxNotAvailableError(SandboxError):
    """The job has no output sandbox to fetch: not final yet, none produced, or stored on the grid.

    Usage: ``except SandboxNotAvailableError as exc: print(exc)``
    """


class UnsafeArchiveError(SandboxError):
    """An archive member would land outside its job folder, or the archive is a bomb.

    Usage: ``except UnsafeArchiveError as exc: print(exc)``
    """


class SandboxTooLargeError(UnsafeArchiveError):
    """An output sandbox is larger than the cap (``DownloadConfig.max_unpacked_bytes``): the
    server sent, or the archive unpacks to, more bytes. Never retried: the transfer is stopped
    there, and what it wrote is removed.

    Usage: ``except SandboxTooLargeError as exc: print(exc.job_id)``
    """


class TemporarySpaceError(SandboxError):
    """The downloads in flight hold as much temporary disk space as they may
    (``DownloadConfig.max_temporary_bytes``): this job's transfer stopped, and what it wrote was
    removed. Download fewer jobs at once, or raise the cap.

    Usage: ``except TemporarySpaceError as exc: print(exc.job_id)``
    """


class IntegrityError(SandboxError):
    """A downloaded file does not match the size or checksum the server gave.

    Usage: ``except IntegrityError as exc: print(exc)``
    """


class JournalError(DiracError):
    """The campaign journal cannot be opened or does not match this campaign.

    Usage: ``except JournalError as exc: print(exc)``
    """


class ConfigurationError(DiracError, ValueError):
    """A setting is wrong: unknown backend, bad URL, unreadable credentials, a value a settings
    object (:class:`~aiodirac.Limits`, :class:`~aiodirac.DownloadConfig`, ...) cannot take, CA
    certificates that do not trust the server.

    Usage: ``except ConfigurationError as exc: print(exc)``
    """


class InvalidArgumentError(DiracError, ValueError):
    """A client call got an argument it cannot use (a job ID that is not a positive integer...).

    Raised before anything reaches the network or the disk.

    Usage: ``except InvalidArgumentError as exc: print(exc)``
    """


def _causes(exc: BaseException) -> list[BaseException]:
    seen: set[int] = set()
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def certificate_refused(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a TLS certificate that did not verify: no retry can help.

    Usage: ``if certificate_refused(exc): raise ConfigurationError(...) from exc``
    """
    import ssl  # here: `import aiodirac` does not pay for ssl (10 ms)

    return any(isinstance(e, ssl.SSLCertVerificationError) for e in _causes(exc))


def reason_of(exc: BaseException) -> str:
    """What went wrong, for a message: the first non-empty text along ``exc``'s causes.

    Some failures carry their reason only in a cause (under trio, a refused TLS certificate is an
    empty ``httpx.ConnectError`` caused by the ``ssl`` error); the type name is the last resort.

    Usage: ``f"the transfer failed: {reason_of(exc)}"``
    """
    for current in _causes(exc):
        if text := str(current):
            return text
    return type(exc).__name__
