"""Running scenario scripts safely: an `ast` allowlist, then a subprocess with hard limits.

A script may only assign names, call library functions, call methods of the
objects those return (through a name), use numbers, booleans and short
strings, arithmetic, comparisons, `if` and `for` loops over a literal `range`
of at most `MAX_LOOP` steps. Anything else (imports, attribute reads, dunder
names, subscripts, lists, `while`, lambdas, comprehensions, f-strings,
`eval`/`exec`/`open`/`getattr`, ...) is refused before it runs.

What passes runs in a fresh interpreter (`python -I`) whose builtins are a
handful of pure functions, with limits on CPU time, address space, file size
(0: it cannot write files) and open files, under a wall-clock timeout; its
output is cut off at `MAX_OUTPUT` bytes.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.scenario import library as scenario_library
from dreamdrive.scenario.types import ScriptResult

MAX_SCRIPT_CHARS = 20_000
MAX_LOOP = 100
MAX_OUTPUT = 2_000_000  # bytes of JSON the script's result may take
SAFE_BUILTINS = ("abs", "min", "max", "round", "range", "len", "float", "int")


@dataclass(frozen=True)
class Limits:
    """Resource limits for one script run."""

    cpu_seconds: int = 5
    memory_bytes: int = 1_500_000_000
    wall_seconds: float = 30.0


class ScriptRejected(DreamdriveError):
    """A script broke the sandbox's rules (the message says which rule, and where)."""


_ALLOWED_NODES = (
    ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.Name, ast.Load, ast.Store, ast.Call, ast.keyword,
    ast.Constant, ast.BinOp, ast.UnaryOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.USub,
    ast.UAdd, ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.BoolOp, ast.And, ast.Or,
    ast.Not, ast.IfExp, ast.If, ast.For, ast.Attribute, ast.Pass,
)  # fmt: skip


def check_script(source: str, functions: set[str], methods: set[str]) -> ast.Module:
    """Parse `source` and check it against the allowlist; returns the tree or raises ScriptRejected.

    Args:
        functions: names the script may call directly (the library's functions).
        methods: method names it may call on a name bound to a library object.
    """
    if not isinstance(source, str) or len(source) > MAX_SCRIPT_CHARS:
        raise ScriptRejected(f"a script must be text of at most {MAX_SCRIPT_CHARS} characters.")
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as error:
        raise ScriptRejected(f"the script does not parse: {error.msg} (line {error.lineno}).") from error
    allowed_names = set(functions) | set(SAFE_BUILTINS)
    bound: set[str] = set()
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if not isinstance(node, _ALLOWED_NODES):
            raise ScriptRejected(f"{type(node).__name__} is not allowed in a scenario script ({where}).")
        if isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise ScriptRejected(f"names may not start with '_' ({node.id!r}, {where}).")
            if isinstance(node.ctx, ast.Store):
                if node.id in allowed_names:
                    raise ScriptRejected(f"{node.id!r} is a library name and cannot be assigned ({where}).")
                bound.add(node.id)
        elif isinstance(node, ast.Attribute):
            raise_unless_method_call(node, tree, methods, where)
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                if node.func.id not in allowed_names:
                    raise ScriptRejected(f"{node.func.id!r} is not a library function ({where}).")
            elif not isinstance(node.func, ast.Attribute):
                raise ScriptRejected(f"only library functions and methods can be called ({where}).")
            if any(isinstance(arg, ast.Starred) for arg in node.args) or any(k.arg is None for k in node.keywords):
                raise ScriptRejected(f"* and ** arguments are not allowed ({where}).")
        elif isinstance(node, ast.For):
            _check_loop(node, where)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, (bytes, complex)) or (isinstance(node.value, str) and len(node.value) > 200):
                raise ScriptRejected(f"only numbers, booleans, None and short strings are allowed ({where}).")
            if isinstance(node.value, (int, float)) and abs(node.value) > 1e6:
                raise ScriptRejected(f"the number {node.value} is out of range ({where}).")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for side in (node.left, node.right):  # "x" * 10**6 and the like
                if isinstance(side, ast.Constant) and isinstance(side.value, str):
                    raise ScriptRejected(f"strings cannot be repeated with * ({where}).")
    return tree


def raise_unless_method_call(node: ast.Attribute, tree: ast.Module, methods: set[str], where: str) -> None:
    """An attribute may only appear as `name.method(...)` with an allowed, public method."""
    if node.attr.startswith("_") or node.attr not in methods:
        raise ScriptRejected(f"'.{node.attr}' is not a method of the scenario library ({where}).")
    if not isinstance(node.value, ast.Name):
        raise ScriptRejected(f"methods are called on names only, as in car.brake(...) ({where}).")
    for parent in ast.walk(tree):
        if isinstance(parent, ast.Call) and parent.func is node:
            return
    raise ScriptRejected(f"'.{node.attr}' must be called, not read ({where}).")


def _check_loop(node: ast.For, where: str) -> None:
    if node.orelse:
        raise ScriptRejected(f"for-else is not allowed ({where}).")
    if not isinstance(node.target, ast.Name):
        raise ScriptRejected(f"a loop variable must be a plain name ({where}).")
    call = node.iter
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "range"):
        raise ScriptRejected(f"loops run over range(...) only ({where}).")
    args = call.args
    if not args or len(args) > 3 or call.keywords or not all(isinstance(a, ast.Constant) for a in args):
        raise ScriptRejected(f"range(...) takes literal integers in a script ({where}).")
    values = [a.value for a in args]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ScriptRejected(f"range(...) takes literal integers in a script ({where}).")
    if len(range(*values)) > MAX_LOOP:
        raise ScriptRejected(f"a loop may run at most {MAX_LOOP} times ({where}).")


# The child: set limits, then run the checked script with only the library and safe builtins in reach.
_CHILD = r"""
import json, resource, sys
limits = json.loads(sys.argv[1])
sys.path[:] = limits["path"]  # -I ignores PYTHONPATH: the parent says where the library lives
resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu"], limits["cpu"]))
resource.setrlimit(resource.RLIMIT_AS, (limits["memory"], limits["memory"]))
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
import importlib
library = importlib.import_module(limits["library"])
resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
source = sys.stdin.read()
import builtins
safe = {name: getattr(builtins, name) for name in limits["builtins"]}
namespace = {"__builtins__": safe}
namespace.update({name: getattr(library, name) for name in library.__all__})
code = compile(source, "<scenario script>", "exec")
del importlib, builtins
try:
    exec(code, namespace)
    result = library.result()
    sys.stdout.write(json.dumps({"ok": True, "result": result}))
except library.ScenarioError as error:
    sys.stdout.write(json.dumps({"ok": False, "error": str(error)}))
except MemoryError:
    sys.stdout.write(json.dumps({"ok": False, "error": "the script ran out of memory"}))
except RecursionError:
    sys.stdout.write(json.dumps({"ok": False, "error": "the script recursed too deeply"}))
"""


def run_script(source: str, library: str, functions: set[str], methods: set[str], limits: Limits = Limits()) -> dict:
    """Check `source` and run it in a limited subprocess against the module `library`; returns its result.

    The library module must define `__all__` (what scripts see), `result()` (the JSON-able
    outcome, read after the script ran) and `ScenarioError` (errors a script can cause).
    """
    check_script(source, functions, methods)
    settings = {
        "cpu": limits.cpu_seconds,
        "memory": limits.memory_bytes,
        "library": library,
        "builtins": list(SAFE_BUILTINS),
        "path": [p for p in sys.path if p],
    }
    env = {"PATH": os.environ.get("PATH", "")}
    try:
        process = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _CHILD, json.dumps(settings)], input=source, capture_output=True,
            text=True, timeout=limits.wall_seconds, env=env, cwd="/",
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise ScriptRejected(f"the script ran longer than {limits.wall_seconds:g} s and was stopped.") from error
    if len(process.stdout) > MAX_OUTPUT:
        raise ScriptRejected(f"the script's result is larger than {MAX_OUTPUT} bytes.")
    if process.returncode != 0 or not process.stdout:
        reason = _describe_failure(process.returncode, process.stderr)
        raise ScriptRejected(f"the script failed: {reason}")
    try:
        reply = json.loads(process.stdout)
    except json.JSONDecodeError as error:
        raise ScriptRejected("the script printed something other than its result.") from error
    if not reply.get("ok"):
        raise ScriptRejected(f"the script failed: {reply.get('error')}")
    return reply["result"]


def run_scenario_script(source: str, limits: Limits = Limits()) -> ScriptResult:
    """Run a script over the trajectory function library (`scenario.library`) in the sandbox; its typed result."""
    result = run_script(
        source, scenario_library.__name__, set(scenario_library.FUNCTIONS), set(scenario_library.METHODS), limits
    )
    return ScriptResult.from_json(result)


def _describe_failure(returncode: int, stderr: str) -> str:
    import signal

    if returncode < 0:
        name = signal.Signals(-returncode).name
        if name == "SIGXCPU" or name == "SIGKILL":
            return "it used more CPU time than allowed and was stopped."
        if name == "SIGXFSZ":
            return "it tried to write a file."
        return f"it was stopped by {name}."
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit status {returncode}"
    if "MemoryError" in last:
        return "it ran out of memory."
    return last[:300]
