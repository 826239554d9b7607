"""The README's test command passes on a fresh machine: a test that runs a program other than
Python itself (an encoder, a virtual display...) skips, saying why, where that program is missing.
CI installs them (.ci/apt-packages), so only this check sees a test that forgot to. This file
names no real program, so that it is not itself taken for a test that runs one."""

import ast

from conftest import REPO

TEST_FILES = sorted([*REPO.glob("tests/**/*.py"), *REPO.glob("samples/*/tests/**/*.py")])
SUBPROCESS_RUNNERS = {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"}


def runs_a_command(function: ast.expr) -> bool:
    """``subprocess.run`` and its kin, ``os.system``, ``os.popen``, ``os.exec*`` and ``os.spawn*``."""
    if not (isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name)):
        return False
    if function.value.id == "subprocess":
        return function.attr in SUBPROCESS_RUNNERS
    return function.value.id == "os" and (function.attr in ("system", "popen")
                                          or function.attr.startswith(("exec", "spawn")))


def own_nodes(scope: ast.AST):
    """The nodes of a module or function, without those of the functions defined in it."""
    for child in ast.iter_child_nodes(scope):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield child
            yield from own_nodes(child)


def programs_run(tree: ast.AST) -> set[str]:
    """The programs a module runs: the string at the head of each command, written in the call or
    in a list assigned, in the same function, to the name the call is given (``command =
    ["encoder", ...]``). Commands built otherwise (``[sys.executable, ...]``, a path found at run
    time) name no program here."""
    programs = set()
    scopes = [tree, *(node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))]
    for scope in scopes:
        assigned = {}
        for node in own_nodes(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
        for node in own_nodes(scope):
            if isinstance(node, ast.Call) and node.args and runs_a_command(node.func):
                command = node.args[0]
                for value in assigned.get(command.id, []) if isinstance(command, ast.Name) else [command]:
                    head = value.elts[0] if isinstance(value, (ast.List, ast.Tuple)) and value.elts else value
                    if isinstance(head, ast.Constant) and isinstance(head.value, str) and head.value.split():
                        programs.add(head.value.split()[0])  # a shell string: its first word
    return programs


def programs_looked_for(tree: ast.AST) -> set[str]:
    """The programs a module looks for with ``shutil.which("NAME")``, as its skip conditions do."""
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "which"
            and node.args and isinstance(node.args[0], ast.Constant)}


def test_a_test_that_runs_a_program_skips_where_it_is_missing():
    unguarded = []
    for path in TEST_FILES:
        tree = ast.parse(path.read_text(), str(path))
        missing = programs_run(tree) - programs_looked_for(tree)
        unguarded += [f"{path.relative_to(REPO)} runs {program}" for program in sorted(missing)]
    assert not unguarded, ("; ".join(unguarded) + ": make the file with PyAV instead, or skip with "
                           "pytest.mark.skipif(shutil.which(PROGRAM) is None, reason=...)")


def test_the_scan_sees_the_programs_the_suite_runs():
    """A guard against a scan that finds nothing: each program a skip condition looks for is
    one the scan sees run."""
    trees = [ast.parse(path.read_text()) for path in TEST_FILES]
    found = set().union(*map(programs_run, trees))
    looked_for = set().union(*map(programs_looked_for, trees))
    assert looked_for and looked_for <= found


def test_the_scan_sees_a_program_run_without_a_skip():
    """A command in the call, one in a list assigned before it, a shell string: each is seen
    (made-up program names); Python itself is no program to look for."""
    tree = ast.parse('subprocess.run(["remuxer", "-i", str(clip), "-c", "copy", str(fast)], check=True)\n'
                     'command = ["imagetool", "a.png", "b.jpg"]\nsubprocess.Popen(command)\n'
                     'os.system("keypresser key q")\nsubprocess.run([sys.executable, "-m", "srpipe"])\n')
    assert programs_run(tree) - programs_looked_for(tree) == {"remuxer", "imagetool", "keypresser"}
    guarded = ast.parse('pytestmark = pytest.mark.skipif(shutil.which("remuxer") is None, reason="none")\n'
                        'subprocess.run(["remuxer", "-version"])\n')
    assert programs_run(guarded) - programs_looked_for(guarded) == set()
