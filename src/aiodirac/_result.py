"""DIRAC's result dictionaries, for the synchronous facade and scripts written the DIRAC way.

``S_OK(value)`` is ``{'OK': True, 'Value': value}``; ``S_ERROR(message)`` is
``{'OK': False, 'Message': message, 'Errno': 0}``. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["S_ERROR", "S_OK", "DiracResult"]


class DiracResult(TypedDict, total=False):
    """The shape of a DIRAC result dictionary.

    Usage: ``result: DiracResult = S_OK(42)``
    """

    OK: bool
    Value: Any
    Message: Any
    Errno: int


def S_OK(value: Any = None) -> DiracResult:
    """A successful DIRAC result.

    Usage: ``S_OK(196)`` -> ``{'OK': True, 'Value': 196}``
    """
    return {"OK": True, "Value": value}


def S_ERROR(message: Any, errno: int = 0) -> DiracResult:
    """A failed DIRAC result. ``message`` is usually a string (a dict for Job setter errors).

    Usage: ``S_ERROR("Job 7 not found")`` -> ``{'OK': False, 'Message': 'Job 7 not found', 'Errno': 0}``
    """
    return {"OK": False, "Message": message, "Errno": errno}
