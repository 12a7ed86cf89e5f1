"""Read a Python file that ``rh-wasm build`` is about to make a component
of, without running it: the functions decorated ``@function`` (name and
parameters), or why it cannot be built. Prints one JSON object."""

import ast
import json
import keyword
import os
import sys


def decorated(fn):
    for d in fn.decorator_list:
        if isinstance(d, ast.Name) and d.id == "function":
            return True
        if isinstance(d, ast.Attribute) and d.attr == "function":
            return True
    return False


def main(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    if keyword.iskeyword(stem):
        return {"error": f"{path}: `{stem}` is a Python keyword; name the file otherwise"}
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except SyntaxError as e:
        return {"error": f"{path}:{e.lineno}: {e.msg}"}
    except OSError as e:
        return {"error": f"cannot read {path}: {e.strerror}"}
    functions = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not decorated(node):
            continue
        a = node.args
        if a.vararg or a.kwarg:
            star = f"*{a.vararg.arg}" if a.vararg else f"**{a.kwarg.arg}"
            return {
                "error": f"{path}:{node.lineno}: @function {node.name} takes {star}: "
                "name each parameter (calls pass JSON arguments by position or name)"
            }
        if a.kwonlyargs:
            return {
                "error": f"{path}:{node.lineno}: @function {node.name} has keyword-only "
                f"parameter `{a.kwonlyargs[0].arg}`: every parameter must be positional or by name"
            }
        if isinstance(node, ast.AsyncFunctionDef):
            return {"error": f"{path}:{node.lineno}: @function {node.name} is async"}
        params = [p.arg for p in a.posonlyargs + a.args]
        functions.append({"name": node.name, "params": params})
    if not functions:
        return {
            "error": f"{path} has no @function: decorate the functions to export "
            "(`from rh_guest import function`)"
        }
    return {"functions": functions}


print(json.dumps(main(sys.argv[1])))
