"""The CLI decides threads before torch starts: --threads anywhere on the line, STYLEFORGE_THREADS,
and OpenMP's passive wait policy unless the user chose one; batch's decode processes and the web
app's worker threads run with what it decided."""
import json
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


THREAD_VARS = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "STYLEFORGE_THREADS")


def probe_env(**env):
    """This environment without thread settings, plus ``env``."""
    full = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    full.update(env)
    return full


def run(*args, **env):
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=probe_env(**env))


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


# The probes run the real CLI in a fresh process and report, from where the work runs, torch's
# thread count and the wait policy the OpenMP runtime read (the environment it was loaded with).
BATCH_PROBE = '''
import json, multiprocessing, os, sys
import styleforge.batch as B


class Probe(B._BlockDataset):
    def __getitem__(self, i):
        import torch
        with open(os.environ["PROBE_OUT"], "a") as f:
            f.write(json.dumps([os.getpid(), torch.get_num_threads(), os.environ.get("OMP_WAIT_POLICY")]) + "\\n")
        return super().__getitem__(i)


if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1])
    B._BlockDataset = Probe
    from styleforge.cli import main
    print("main", os.getpid())
    sys.exit(main(sys.argv[2:]))
'''

WEB_PROBE = '''
import json, os, sys, threading
import uvicorn
import styleforge.webapp as W

load_models = W.load_models


def probing_models(*a, **k):
    models = load_models(*a, **k)
    for m in models.values():
        translate = m.pipe.method.translate

        def probe(*args, **kw):
            import torch
            print("worker", json.dumps([threading.current_thread().name, torch.get_num_threads(),
                                        os.environ.get("OMP_WAIT_POLICY")]), flush=True)
            return translate(*args, **kw)
        m.pipe.method.translate = probe
    return models


def requests(app, **kw):  # in place of the server: the same app and its worker threads
    from fastapi.testclient import TestClient
    with TestClient(app) as c:
        f = sorted(os.scandir(os.environ["PROBE_IMAGES"]), key=lambda e: e.name)[0]
        r = c.post("/api/translate", files={"image": (f.name, open(f.path, "rb").read())})
        assert r.status_code == 200, r.text


W.load_models, uvicorn.run = probing_models, requests
from styleforge.cli import main
sys.exit(main(sys.argv[1:]))
'''


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch

    from styleforge.checkpoint import save_model
    from styleforge.registry import build_method

    torch.manual_seed(0)
    return save_model(tmp_path_factory.mktemp("threads") / "model",
                      build_method("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks"))


@pytest.fixture(scope="module")
def torch_default_threads():
    """torch's own thread count in a fresh process (one per core)."""
    r = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], capture_output=True,
                       text=True, env=probe_env(), check=True)
    return int(r.stdout)



@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_batch_decode_workers_run_one_sleeping_thread_whatever_the_main_process_uses(start, tiny_model, h2z,
                                                                                    tmp_path):
    # the main process runs two threads; each decode worker (forked, or spawned and re-importing
    # torch) must run one, with the passive wait the CLI chose before torch started
    probe, out = tmp_path / "probe_batch.py", tmp_path / "probe.jsonl"
    probe.write_text(BATCH_PROBE)
    images = tmp_path / "in"
    images.mkdir()
    for f in sorted((h2z / "testA").iterdir())[:2]:
        (images / f.name).write_bytes(f.read_bytes())
    r = subprocess.run([sys.executable, str(probe), start, "translate", str(tiny_model), str(images), "--out",
                        str(tmp_path / "out"), "--workers", "1", "--batch-size", "1", "--block-size", "1",
                        "--threads", "2", "--quiet"],
                       capture_output=True, text=True, env=probe_env(PROBE_OUT=str(out)), timeout=120)
    assert r.returncode == 0, r.stderr
    main_pid = int(r.stdout.split()[1])
    reports = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(reports) == 2 and all(pid != main_pid for pid, _, _ in reports)  # read in a worker
    assert [(n, policy) for _, n, policy in reports] == [(1, "PASSIVE")] * 2


@pytest.mark.parametrize("flags, threads", [([], None), (["--threads", "1"], 1)])
def test_web_app_worker_runs_the_decided_threads_with_passive_wait(flags, threads, tiny_model, h2z, tmp_path,
                                                                 torch_default_threads):
    probe = tmp_path / "probe_web.py"
    probe.write_text(WEB_PROBE)
    r = subprocess.run([sys.executable, str(probe), "serve", str(tiny_model), *flags], capture_output=True,
                       text=True, env=probe_env(PROBE_IMAGES=str(h2z / "testA")), timeout=120)
    assert r.returncode == 0, r.stderr
    reports = [json.loads(line.split(" ", 1)[1]) for line in r.stdout.splitlines() if line.startswith("worker ")]
    assert reports == [["styleforge-worker_0", threads or torch_default_threads, "PASSIVE"]]
