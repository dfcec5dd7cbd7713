"""The sandbox refuses or stops hostile scripts, and writes nothing anywhere."""

import os

import pytest

from dreamdrive.scenario.library import FUNCTIONS, METHODS
from dreamdrive.scenario.sandbox import Limits, ScriptRejected, check_script, run_script

LIBRARY = "dreamdrive.scenario.library"
GOOD = "ego(speed=10)\ncar = vehicle('car', lane='left', ahead=8)\ncar.cut_in(at=2.0)\nsave()\n"

# Refused by the static check before anything runs.
REFUSED = [
    "import os",
    "from os import system",
    "__import__('os').system('touch /tmp/pwned')",
    "open('/etc/passwd')",
    "eval('1+1')",
    "exec('x = 1')",
    "compile('1', 'x', 'eval')",
    "getattr(ego, 'x')",
    "globals()",
    "locals()",
    "vars()",
    "dir()",
    "breakpoint()",
    "input()",
    "print('hi')",
    "type(1)",
    "object()",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "ego.__globals__",
    "ego.__code__",
    "save.__module__",
    "x = ego\nx.__self__",
    "_secret = 1",
    "__builtins__",
    "car = vehicle()\ncar.trajectory(10)",
    "car = vehicle()\ncar._lateral(0, 0, 1)",
    "car = vehicle()\ncar.speed0 = 100",
    "car = vehicle()\nx = car.cut_in",
    "ego().brake()",
    "x = [1, 2, 3]",
    "x = (1, 2)",
    "x = {'a': 1}",
    "x = {1, 2}",
    "x = [i for i in range(10)]",
    "f = lambda: 1",
    "def f():\n    pass",
    "class A:\n    pass",
    "while True:\n    pass",
    "for i in range(10**9):\n    pass",
    "for i in range(1000):\n    pass",
    "n = 10\nfor i in range(n):\n    pass",
    "for i in 'abc':\n    pass",
    "x = 'a' * 1000000",
    "x = 10 ** 100",
    "x = 1e100",
    "x = f'{ego}'",
    "x = '{0.__class__}'.format(ego)",
    "x = b'bytes'",
    "x = ego[0]",
    "try:\n    pass\nexcept Exception:\n    pass",
    "with open('x') as f:\n    pass",
    "assert False",
    "del ego",
    "global x",
    "async def f():\n    pass",
    "ego = 1",
    "save(*range(1))",
    "vehicle(**dict(kind='car'))",
    "x = 'ab' * 3",
    "def (",
    "x = " + "'a'" * 0 + "'" + "a" * 300 + "'",
]


@pytest.mark.parametrize("script", REFUSED)
def test_hostile_scripts_are_refused(script):
    with pytest.raises(ScriptRejected):
        check_script(script, set(FUNCTIONS), set(METHODS))


def test_corpus_size():
    assert len(REFUSED) >= 50


def test_cpu_bomb_is_stopped():
    # passes the static check (bounded loops), but 10^8 steps cannot finish within the CPU limit
    busy = (
        "for a in range(100):\n for b in range(100):\n  for c in range(100):\n   for d in range(100):\n    x = a * b\n"
    )
    check_script(busy, set(FUNCTIONS), set(METHODS))
    with pytest.raises(ScriptRejected, match="CPU time|longer than"):
        run_script(busy, LIBRARY, set(FUNCTIONS), set(METHODS), Limits(cpu_seconds=1, wall_seconds=10))


def test_actor_bomb_is_refused_by_the_library():
    script = "ego()\nfor a in range(100):\n for b in range(100):\n  x = vehicle('car', lane='left', ahead=1)\n"
    with pytest.raises(ScriptRejected, match="at most 64 actors"):
        run_script(script, LIBRARY, set(FUNCTIONS), set(METHODS))


def test_library_errors_are_reported():
    with pytest.raises(ScriptRejected, match="never called ego"):
        run_script("save()", LIBRARY, set(FUNCTIONS), set(METHODS))
    with pytest.raises(ScriptRejected, match="weather 'snow'"):
        run_script("ego()\nset_weather('snow')\nsave()", LIBRARY, set(FUNCTIONS), set(METHODS))
    with pytest.raises(ScriptRejected, match="never called save"):
        run_script("ego()", LIBRARY, set(FUNCTIONS), set(METHODS))


def test_good_script_runs_and_writes_nothing(tmp_path):
    before = set(os.listdir(tmp_path))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = run_script(GOOD, LIBRARY, set(FUNCTIONS), set(METHODS))
    finally:
        os.chdir(cwd)
    assert result["frames"] == 97 and result["actors"][0]["id"] == "car-1"
    assert set(os.listdir(tmp_path)) == before
