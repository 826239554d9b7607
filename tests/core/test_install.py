"""First contact: packaging without warnings, shell completion as the README documents it."""

import os
import shutil
import subprocess
import sys
import zipfile

from conftest import REPO


def test_the_package_builds_without_warnings(tmp_path):
    """What quickstart.sh's 'pip install -e .' builds, built here from a copy of the tree."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "srpipe", source / "srpipe", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                           "-w", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = (done.stdout + done.stderr).splitlines()
    warnings = [line for line in lines if "warn" in line.lower()
                and "byte-compiling is disabled" not in line  # PYTHONDONTWRITEBYTECODE, where it is set
                and "Location 'file:" not in line]  # this machine's package index configuration
    assert not warnings, "\n".join(warnings)
    (wheel,) = (tmp_path / "wheel").glob("srpipe-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = set(archive.namelist())
    left_out = [str(path.relative_to(source)) for path in (source / "srpipe").rglob("*")
                if path.is_file() and str(path.relative_to(source)) not in packaged]
    assert not left_out, f"files of the package that the wheel leaves out (pyproject's package-data): {left_out}"


def completion(env):
    done = subprocess.run([sys.executable, "-c", "from srpipe.cli import main; main()"], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_shell_completion_as_documented():
    """README: eval "$(_SRPIPE_COMPLETE=bash_source srpipe)" (zsh_source, fish_source)."""
    for shell in ("bash", "zsh", "fish"):
        assert "_SRPIPE_COMPLETE" in completion({"_SRPIPE_COMPLETE": f"{shell}_source"})
    words = completion({"_SRPIPE_COMPLETE": "bash_complete", "COMP_WORDS": "srpipe ups", "COMP_CWORD": "1"})
    assert words.split() == ["plain,upscale"]
    words = completion({"_SRPIPE_COMPLETE": "bash_complete", "COMP_WORDS": "srpipe upscale x --device ",
                        "COMP_CWORD": "4"})
    assert words.split() == ["plain,auto", "plain,cpu", "plain,cuda"]
