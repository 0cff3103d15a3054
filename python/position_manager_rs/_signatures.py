"""The native classes' constructor signatures on Python 3.9.

The wheel targets the stable ABI of 3.9 (abi3), and CPython 3.9 drops the text signature from the
docstring of a class made from a type spec: there ``inspect.signature(Position)`` raised
``ValueError`` and ``help(Position)`` showed no constructor line. Python 3.10 and later keep it as
``Position.__text_signature__``. ``_core._TEXT_SIGNATURES`` records each class's text (the same
one); on 3.9 ``install()`` gives each class a ``__signature__`` built from it, which
``inspect.signature`` (and so ``help``) reads first.
"""

from __future__ import annotations

import ast
import inspect
import sys
from typing import Any


def parse(text: str) -> inspect.Signature:
    """The ``inspect.Signature`` of a text signature such as ``"(a, b=1, *, c=None)"``.

    Defaults must be Python literals (pyo3 writes them so).
    """
    tree = ast.parse(f"def _{text}: pass", mode="exec")
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    args = function.args
    kind = inspect.Parameter
    parameters: list[inspect.Parameter] = []
    positional: list[tuple[ast.arg, Any]] = [(a, kind.POSITIONAL_ONLY) for a in args.posonlyargs]
    positional += [(a, kind.POSITIONAL_OR_KEYWORD) for a in args.args]
    first_default = len(positional) - len(args.defaults)
    for i, (arg, arg_kind) in enumerate(positional):
        default: Any = kind.empty
        if i >= first_default:
            default = ast.literal_eval(args.defaults[i - first_default])
        parameters.append(kind(arg.arg, arg_kind, default=default))
    if args.vararg is not None:
        parameters.append(kind(args.vararg.arg, kind.VAR_POSITIONAL))
    for arg, node in zip(args.kwonlyargs, args.kw_defaults):
        default = kind.empty if node is None else ast.literal_eval(node)
        parameters.append(kind(arg.arg, kind.KEYWORD_ONLY, default=default))
    if args.kwarg is not None:
        parameters.append(kind(args.kwarg.arg, kind.VAR_KEYWORD))
    return inspect.Signature(parameters)


class ClassSignature:
    """A native class's ``__signature__`` on 3.9, as 3.10+'s ``inspect.signature`` sees it.

    On the class itself: its constructor's signature. On a subclass: ``None`` (so that
    ``inspect.signature`` reads the subclass's own ``__new__`` or ``__init__``) when it or a class
    between it and the native one defines either, else the native class's. On an instance it is
    absent, as on 3.10+.
    """

    def __init__(self, cls: type, signature: inspect.Signature) -> None:
        self._cls = cls
        self._signature = signature

    def __get__(self, instance: object, owner: type | None = None) -> inspect.Signature | None:
        if instance is not None or owner is None:
            raise AttributeError("__signature__")
        for klass in owner.__mro__:
            if klass is self._cls:
                return self._signature
            if "__init__" in vars(klass) or "__new__" in vars(klass):
                return None
        return None


def install() -> None:
    """On Python 3.9, gives each class named in ``_core._TEXT_SIGNATURES`` its ``__signature__``
    (3.10 and later read ``__text_signature__`` and need nothing)."""
    if sys.version_info >= (3, 10):
        return
    from . import _core

    for name, text in _core._TEXT_SIGNATURES.items():
        cls = getattr(_core, name)
        cls.__signature__ = ClassSignature(cls, parse(text))
