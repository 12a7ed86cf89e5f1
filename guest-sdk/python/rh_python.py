"""rh-wasm's Python interpreter, deployed as `python` by `rh-wasm python
install`: `rh-wasm run-python -- STATEMENT..` runs the statements in order
in one namespace, like the lines of one script, each recorded with its exit
code in the Run's `cmds`."""

import importlib
import sys
import traceback
import types

import rh_guest
from rh_guest import function

# `import rh` in a statement: `rh.artifacts.load(name) -> bytes` and
# `rh.artifacts.save(name, data)`, recorded as the Run's upstream and
# downstream artifacts.
rh = types.ModuleType("rh", "rh-wasm from inside a run-python Run.")
rh.artifacts = rh_guest.artifacts
rh.ArtifactError = rh_guest.ArtifactError
sys.modules["rh"] = rh

# A component holds the modules imported while it is built: the standard
# library's, imported here, so that statements can import them.
for _name in """
    abc argparse array ast base64 binascii bisect calendar cmath codecs collections
    colorsys configparser contextlib copy csv dataclasses datetime decimal difflib
    dis enum errno fnmatch fractions functools gettext glob graphlib gzip hashlib
    heapq hmac html html.parser http io ipaddress itertools json keyword linecache
    locale logging logging.handlers lzma math mimetypes numbers operator os
    os.path pathlib pickle pkgutil platform pprint queue quopri random re reprlib
    sched secrets shlex shutil statistics string stringprep struct sys tarfile
    tempfile textwrap threading time timeit token tokenize tomllib traceback types
    typing unicodedata urllib urllib.parse uuid warnings weakref zipfile zlib
    zoneinfo asyncio concurrent.futures contextvars email email.message email.utils
    getopt optparse plistlib unittest xml.dom.minidom xml.etree.ElementTree
""".split():
    try:
        importlib.import_module(_name)
    except Exception:  # noqa: BLE001 - not in this build: left out
        pass


def _summary(e):
    try:
        if isinstance(e, SyntaxError):
            return f"SyntaxError: {e.msg}"
        text = str(e).strip().splitlines()
        return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__
    except BaseException:  # noqa: BLE001 - a hostile __str__
        return type(e).__name__


@function
def run(statements: list, keep_going: bool) -> list:
    """Runs Python statements in order in one namespace."""
    # Each line reaches the Run's files as it is printed (`logs --follow`).
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    scope = {"__name__": "__main__", "__builtins__": __builtins__}
    answers = []
    failed = False
    # `sys.exit()` ends the script, as it would a file run by python.
    exited = False
    for i, statement in enumerate(statements):
        if exited or (failed and not keep_going):
            answers.append(None)
            continue
        try:
            exec(compile(statement, f"<statement {i + 1}>", "exec"), scope)
            answers.append({"exit_code": 0})
        except SystemExit as e:
            exited = True
            if e.code is None:
                code = 0
            elif isinstance(e.code, int):
                code = e.code
            else:
                code = 1
            answers.append({"exit_code": code, "error": f"SystemExit: {e.code}"})
        except BaseException as e:  # noqa: BLE001 - the statement's, recorded
            try:
                traceback.print_exc(file=sys.stderr)
            except BaseException:  # noqa: BLE001 - a hostile exception
                pass
            answers.append({"exit_code": 1, "error": _summary(e)})
            failed = True
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
    return answers
