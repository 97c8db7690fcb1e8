"""``styleforge serve`` as a real uvicorn server in a subprocess: it binds loopback, answers 50
concurrent requests (twice, with its memory bounded), and its page works in headless Chromium."""
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch
from PIL import Image

from styleforge.checkpoint import save_model
from styleforge.registry import build_method

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "horse2zebra"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    torch.manual_seed(0)
    model = tmp_path_factory.mktemp("serve") / "h2z"
    save_model(model, build_method("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks"))
    port = free_port()
    log = tmp_path_factory.mktemp("log") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "styleforge", "serve", str(model), "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "OMP_NUM_THREADS": "1", "STYLEFORGE_DEVICE": "cpu"})
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.time()
        while True:
            try:
                if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.time() - t0 < 60, "server did not start: " + log.read_text()
            time.sleep(0.2)
        yield url, proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (from /proc/net/tcp, tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            for line in list(f)[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, p = local.split(":")
                if state == "0A" and int(p, 16) == port:  # 0A: LISTEN
                    found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]) if len(addr) == 8 else addr)
    return found


def test_binds_loopback_by_default(server):
    url, proc, log = server
    port = int(url.rsplit(":", 1)[1])
    assert f"at http://127.0.0.1:{port}/" in log.read_text()
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("needs /proc/net/tcp (Linux) to see the listening address")
    assert listening_addresses(port) == {"127.0.0.1"}


def test_fifty_concurrent_requests_all_answered_with_bounded_memory(server):
    url, proc, _ = server
    with Image.open(sorted((SAMPLE / "testA").iterdir())[0]) as im:
        buf = io.BytesIO()
        im.convert("RGB").resize((64, 64)).save(buf, format="PNG")
    data = buf.getvalue()

    with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=64)) as client:
        def one(i):
            r = client.post(url + "/api/translate", files={"image": (f"{i}.png", data, "image/png")},
                            data={"direction": "AtoB" if i % 2 else "BtoA"})
            return r.status_code, r.headers.get("content-type"), len(r.content)

        def wave():
            with ThreadPoolExecutor(50) as pool:
                return list(pool.map(one, range(50)))

        first = wave()
        rss_first = rss_mb(proc.pid)
        second = wave()
        rss_second = rss_mb(proc.pid)
    for results in (first, second):
        assert [s for s, _, _ in results] == [200] * 50
        assert all(ct == "image/png" and n > 100 for _, ct, n in results)
    # stated bound: a second wave of 50 grows the server by less than 25 MB over the first
    # (each request holds one 64×64 image; a leak of the upload or result per request would show)
    print(f"server RSS after wave 1: {rss_first:.0f} MB, after wave 2: {rss_second:.0f} MB")
    assert rss_second - rss_first < 25, (rss_first, rss_second)


def find_browser():
    for chrome in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(chrome):
            break
    else:
        return None, None
    return shutil.which(chrome), shutil.which("chromedriver")


def test_page_in_headless_chromium_shows_the_result_and_errors(server, tmp_path):
    chrome, driver_path = find_browser()
    if not chrome or not driver_path:
        pytest.skip("needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _, _ = server
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        drv.get(url + "/")
        wait = WebDriverWait(drv, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#direction option"))
        assert [o.text for o in drv.find_elements(By.CSS_SELECTOR, "#direction option")] == ["AtoB", "BtoA"]
        horse = sorted((SAMPLE / "testA").iterdir())[0]
        drv.find_element(By.ID, "file").send_keys(str(horse))
        ok = wait.until(lambda d: d.execute_script(
            "const i = document.querySelector('img.result'); return i && i.complete && i.naturalWidth > 0"
            " ? [i.naturalWidth, i.naturalHeight] : null"))
        with Image.open(horse) as im:
            assert tuple(ok) == im.size
        link = drv.find_element(By.CSS_SELECTOR, "a.download")
        assert link.get_attribute("download") == f"{horse.stem}_AtoB.png"
        # a file that is not an image: the message appears in the page
        bad = tmp_path / "notes.png"
        bad.write_text("not an image")
        drv.find_element(By.ID, "file").send_keys(str(bad))
        msg = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".row .error"))
        assert "notes.png: not an image" in msg[0].text
    finally:
        drv.quit()


def test_an_exposed_host_needs_a_token(tmp_path, monkeypatch, capsys):
    from styleforge.cli import main

    monkeypatch.delenv("STYLEFORGE_TOKEN", raising=False)
    assert main(["serve", str(tmp_path / "nope"), "--host", "0.0.0.0"]) == 2
    assert "--host 0.0.0.0 makes the app reachable from other machines: give it a token" in capsys.readouterr().err
    (tmp_path / "t").write_text("short\n")
    assert main(["serve", str(tmp_path / "nope"), "--host", "0.0.0.0", "--token-file", str(tmp_path / "t")]) == 2
    assert "at least 16 characters" in capsys.readouterr().err


def test_mixed_good_and_bad_requests_get_no_5xx_and_memory_stays_flat():
    """A bounded run of benchmarks/serve_load.py (its own server on 127.0.0.1): MUNIT and AdaIN,
    good requests and bad ones (files, sizes, numbers, codes, too many files)."""
    import json

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py"
    r = subprocess.run([sys.executable, str(script), "--models", "munit,adain", "--requests", "30",
                        "--concurrency", "4", "--seconds", "60", "--seed", "1", "--json"],
                       capture_output=True, text=True, timeout=180)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["requests"] == 30 and res["unexpected"] == 0 and res["4xx_not_json"] == 0, res
    assert res["4xx"] > 5 and res["2xx"] > 3, res  # both kinds were sent
