"""The two public tiers: every type a public signature mentions is exported, and public names
show the module users import them from."""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import aiodirac
import aiodirac.backends
import aiodirac.backends.diracx
import aiodirac.backends.local

TIERS = {"aiodirac": aiodirac, "aiodirac.backends": aiodirac.backends}
#: the two backends' packages export a few names of their own (their value types)
BACKENDS = (aiodirac.backends.diracx, aiodirac.backends.local)


def _exported() -> dict[str, Any]:
    names: dict[str, Any] = {}
    for module in (*TIERS.values(), *BACKENDS):
        for name in module.__all__:
            names.setdefault(name, getattr(module, name))
    return names


#: Classes users receive and never build: their constructors take the library's internals.
OBTAINED = frozenset({"TrackStream", "SubmissionStream"})


def _callables(obj: Any) -> Iterator[tuple[str, Callable[..., Any]]]:
    if not isinstance(obj, type):
        if callable(obj):
            yield obj.__name__, obj
        return
    for name, member in inspect.getmembers(obj):
        if name.startswith("_") and (name != "__init__" or obj.__name__ in OBTAINED):
            continue
        if isinstance(member, property) and member.fget is not None:
            yield f"{obj.__name__}.{name}", member.fget
        elif (inspect.isfunction(member) or inspect.ismethod(member)) and getattr(
            member, "__module__", ""
        ).startswith("aiodirac"):
            yield f"{obj.__name__}.{name}", member


def _classes(annotation: Any) -> Iterator[type]:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        yield annotation
        return
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return
    if isinstance(origin, type):
        yield origin
    for arg in typing.get_args(annotation):
        if isinstance(arg, list):  # Callable[[A, B], R]
            for item in arg:
                yield from _classes(item)
        else:
            yield from _classes(arg)


def test_every_type_in_a_public_signature_is_exported() -> None:
    exported = _exported()
    known = {id(value) for value in exported.values()}
    namespace = {**vars(collections.abc), **vars(typing), **exported}
    unexported: set[str] = set()
    for value in exported.values():
        for where, fn in _callables(value):
            try:
                hints = typing.get_type_hints(fn, localns=namespace)
            except NameError as exc:  # a name only its module imports for type checking
                unexported.add(f"{where}: {exc.name}")
                continue
            except TypeError:  # array.array[int]: a hint Python 3.11 cannot evaluate
                continue
            for annotation in hints.values():
                for cls in _classes(annotation):
                    # a private class (``_Run``) is the library's own business: only a
                    # constructor users never call takes one
                    private = cls.__qualname__.startswith("_")
                    if (
                        cls.__module__.startswith("aiodirac")
                        and not private
                        and id(cls) not in known
                    ):
                        unexported.add(f"{where}: {cls.__qualname__}")
    assert sorted(unexported) == []


def test_signature_aliases_are_exported() -> None:
    assert isinstance(aiodirac.JobIDs, types.UnionType)
    assert aiodirac.TrackCallback is not None
    for protocol in ("StateJournal", "DownloadJournal", "SandboxLocator"):
        assert getattr(aiodirac, protocol)._is_protocol


@pytest.mark.parametrize(("tier", "module"), list(TIERS.items()))
def test_public_classes_show_their_public_module(tier: str, module: Any) -> None:
    wrong = {
        name: value.__module__
        for name in module.__all__
        if isinstance(value := getattr(module, name), type)
        and "._" in value.__module__
        and value.__module__ != "aiodirac._exceptions"
    }
    assert wrong == {}
    assert repr(aiodirac.Job) == "<class 'aiodirac.Job'>"


def test_backend_author_names_are_a_tier_of_their_own() -> None:
    backend_tier = {"Backend", "Capabilities", "SubmitChunk", "ConcreteJob", "Step", "chunk_jobs"}
    assert backend_tier <= set(aiodirac.backends.__all__)
    assert not backend_tier & set(aiodirac.__all__)
    # still found under their old address, for code written before the tiers
    assert aiodirac.Backend is aiodirac.backends.Backend
