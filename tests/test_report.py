"""``styleforge report``: one static page comparing runs, opened in real headless Chromium."""
import json
import shutil

import pytest

from styleforge import config as C
from styleforge.cli import main
from styleforge.training.trainer import Trainer


def tiny_run(root, out, **over):
    cfg = C.resolve("tiny/cyclegan", overrides=[f"{k}={v}" for k, v in
                                               {"train.steps": 2, "train.steps_decay": 0, **over}.items()])
    cfg["data"]["root"] = str(root)
    Trainer(cfg, out).fit()
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_feature_net):
    from pathlib import Path

    h2z = Path(__file__).resolve().parents[1] / "data" / "horse2zebra"
    tmp = tmp_path_factory.mktemp("report")
    a = tiny_run(h2z, tmp / "narrow")
    b = tiny_run(h2z, tmp / "evaluated", **{"train.seed": 1, "train.eval_every": 2, "train.eval_images": 4,
                                            "train.eval_feature_net": str(tiny_feature_net),
                                            "train.eval_feature_size": 32})
    out = tmp / "page"
    rc = main(["report", str(a), str(b), "--out", str(out), "--num-images", "3", "--fid-method", "lowrank",
               "--feature-net", str(tiny_feature_net), "--feature-size", "32", "--cache-dir", str(tmp / "cache")])
    assert rc == 0
    return out


def test_the_page_and_its_files_are_written(report):
    html = (report / "index.html").read_text()
    for f in ("losses_run0.png", "losses_run1.png", "eval_curves.png", "images/000_input.png",
              "images/002_run1.png"):
        assert (report / f).is_file() and f in html
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics) == {"narrow", "evaluated"}
    assert all(m["n_fake"] == 8 and "fid" in m["metrics"] and "kid" in m["metrics"] for m in metrics.values())


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("needs selenium (the test extras: pip install -e .[test])")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(driver), options=opts)
    yield d
    d.quit()


def test_chromium_shows_every_image_and_a_row_per_run(report, browser):
    from selenium.webdriver.common.by import By

    browser.get((report / "index.html").as_uri())
    browser.execute_async_script(
        "const done = arguments[0]; Promise.all([...document.images].map(i => i.complete ? 0 :"
        " new Promise(r => { i.onload = i.onerror = r; }))).then(done);")
    sizes = browser.execute_script("return [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth]);")
    # 3 inputs + 3 translations by each of the 2 runs, 2 loss plots, the evaluation curves
    assert len(sizes) == 3 * 3 + 2 + 1
    assert all(w > 0 for _, w in sizes), [s for s, w in sizes if w == 0]
    rows = browser.find_elements(By.CSS_SELECTOR, "table#metrics tr")
    header = [c.text for c in rows[0].find_elements(By.TAG_NAME, "th")]
    assert header[:2] == ["run", "method"] and "FID" in header and "KID x100" in header
    body = {r.find_elements(By.TAG_NAME, "td")[0].text: [c.text for c in r.find_elements(By.TAG_NAME, "td")]
            for r in rows[1:]}
    assert set(body) == {"narrow", "evaluated"}
    fid_col = header.index("FID")
    metrics = json.loads((report / "metrics.json").read_text())
    for run, cells in body.items():
        assert cells[1] == "cyclegan"
        assert cells[fid_col] == f"{metrics[run]['metrics']['fid']['value']:.2f}"
    best = header.index("best held-out (step)")
    assert body["evaluated"][best].startswith("kid ") and body["narrow"][best] == "-"
    columns = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "table.images tr:first-child th")]
    assert columns == ["", "input", "narrow", "evaluated"]
