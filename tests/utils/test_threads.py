"""The CLI decides threads before torch starts: --threads anywhere on the line, STYLEFORGE_THREADS,
and OpenMP's passive wait policy unless the user chose one."""
import os
import subprocess
import sys

import pytest

from styleforge.cli import _take_threads, main
from styleforge.utils.threads import configure_threads

PROBE = ("import os, sys; from styleforge.cli import main; import styleforge.cli as c; "
         "c.cmd_presets = lambda a, o: print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('OMP_NUM_THREADS'), "
         "__import__('torch').get_num_threads()) or 0; "
         "sys.exit(main(sys.argv[1:]))")


def run(*args, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "STYLEFORGE_THREADS")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=full)


def test_threads_flag_is_taken_from_anywhere_on_the_line():
    assert _take_threads(["demo", "--threads", "1", "--out", "x"]) == (["demo", "--out", "x"], 1)
    assert _take_threads(["--threads=3", "translate", "m"]) == (["translate", "m"], 3)
    assert _take_threads(["presets"]) == (["presets"], None)


def test_cli_sets_passive_wait_and_the_thread_count_before_torch_starts():
    r = run("presets", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["PASSIVE", "1", "1"]  # torch started with one thread
    r = run("presets", STYLEFORGE_THREADS="1")
    assert r.stdout.split() == ["PASSIVE", "1", "1"]
    r = run("presets", OMP_WAIT_POLICY="ACTIVE")  # the user's choice stays
    assert r.stdout.split()[0] == "ACTIVE"


@pytest.mark.parametrize("bad", [["--threads", "0"], ["--threads", "two"], ["--threads"]])
def test_bad_thread_counts_are_one_line_errors(bad, capsys):
    assert main(["presets", *bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "thread" in err[0]


def test_env_value_must_be_a_number(monkeypatch):
    monkeypatch.setenv("STYLEFORGE_THREADS", "many")
    with pytest.raises(ValueError, match="STYLEFORGE_THREADS"):
        configure_threads()
