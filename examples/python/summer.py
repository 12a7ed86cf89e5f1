"""The README's first function, in Python.

    rh-wasm build examples/python/summer.py     # -> summer.wasm
    rh-wasm deploy summer.wasm
    rh-wasm call summer 1 2 --run-name my_py_run
"""

from rh_guest import function


@function
def summer(a: int, b: int) -> int:
    """Adds two numbers."""
    print(f"adding {a} and {b}")
    return a + b
