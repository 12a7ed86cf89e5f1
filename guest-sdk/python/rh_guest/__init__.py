"""rh_guest: functions for rh-wasm, written in Python.

Decorate functions with ``@function``; build the file with
``rh-wasm build app.py`` (componentize-py against rh-wasm's WIT); deploy
and call the component like one built from Rust::

    from rh_guest import function, artifacts

    @function
    def summer(a: int, b: int) -> int:
        \"\"\"Adds two numbers.\"\"\"
        print(f"adding {a} and {b}")
        return a + b

Arguments arrive as JSON (positional, or by parameter name) and the result
leaves as JSON. An exception the function raises ends its Run ``failed``
with the exception's one-line summary (its traceback goes to the Run's
stderr). ``artifacts.load(name)`` and ``artifacts.save(name, data)`` are
recorded as the Run's upstream and downstream artifacts.
"""

import inspect
import json
import sys
import traceback

# The bindings componentize-py makes from rh-wasm's WIT. Imported here, at
# build time: a component holds only the modules imported while it is made.
from componentize_py_types import Err
from wit_world.exports.function import (
    CallError_BadInput,
    CallError_Failed,
    CallError_UnknownFunction,
    FunctionInfo,
)
from wit_world.imports import artifacts as _host

__all__ = ["function", "artifacts", "ArtifactError"]

# name -> (callable, parameter names, docstring)
_FUNCTIONS = {}


def function(fn):
    """Export ``fn`` as a function of this component, under its own name."""
    params = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(
                f"@function {fn.__name__}: *args and **kwargs cannot be called "
                "from JSON arguments; name each parameter"
            )
        if p.kind == p.KEYWORD_ONLY:
            raise TypeError(
                f"@function {fn.__name__}: keyword-only parameter `{p.name}`; "
                "every parameter must be positional or by name"
            )
        params.append(p.name)
    if fn.__name__ in _FUNCTIONS:
        raise TypeError(f"@function {fn.__name__}: defined twice")
    _FUNCTIONS[fn.__name__] = (fn, params, inspect.getdoc(fn))
    return fn


class ArtifactError(Exception):
    """An artifact could not be loaded or saved."""


class artifacts:
    """The cluster's named artifacts, as the calling Run sees them."""

    @staticmethod
    def load(name: str) -> bytes:
        """The current version of artifact ``name``."""
        try:
            return bytes(_host.load(name))
        except Err as e:
            raise ArtifactError(e.value) from None

    @staticmethod
    def save(name: str, data) -> None:
        """Save ``data`` (bytes, or text as UTF-8) as a new version of ``name``."""
        if isinstance(data, str):
            data = data.encode()
        try:
            _host.save(name, bytes(data))
        except Err as e:
            raise ArtifactError(e.value) from None


def _bind(name, params, args):
    """Positional or named JSON arguments as a list in parameter order; a
    message naming what does not fit."""
    if isinstance(args, list):
        if len(args) > len(params):
            return None, f"{name} takes {len(params)} arguments, {len(args)} given"
        if len(args) < len(params):
            return None, f"missing argument `{params[len(args)]}` of {name}"
        return args, None
    if isinstance(args, dict):
        for k in args:
            if k not in params:
                return None, f"unknown argument `{k}` of {name} (it takes {', '.join(params) or 'none'})"
        for p in params:
            if p not in args:
                return None, f"missing argument `{p}` of {name}"
        return [args[p] for p in params], None
    return None, "arguments must be a JSON array or object"


def _summary(e):
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _describe():
    return [FunctionInfo(n, list(p), d) for n, (_, p, d) in sorted(_FUNCTIONS.items())]


def _call(name, raw):
    entry = _FUNCTIONS.get(name)
    if entry is None:
        raise Err(CallError_UnknownFunction(name))
    fn, params, _ = entry
    try:
        args = json.loads(bytes(raw) or b"[]")
    except ValueError as e:
        raise Err(CallError_BadInput(f"arguments are not JSON: {e}")) from None
    values, why = _bind(name, params, args)
    if why:
        raise Err(CallError_BadInput(why))
    try:
        result = fn(*values)
    except Exception as e:  # noqa: BLE001 - every failure is the Run's
        traceback.print_exc(file=sys.stderr)
        raise Err(CallError_Failed(_summary(e))) from None
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    try:
        return json.dumps(result).encode()
    except (TypeError, ValueError) as e:
        raise Err(CallError_Failed(f"the result of {name} is not JSON: {e}")) from None
