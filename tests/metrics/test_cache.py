"""The real-set feature cache: hit the second time, missed when the folder or the network changes."""
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from styleforge.metrics.cache import folder_features, folder_key
from styleforge.metrics.evaluate import EvalOptions, evaluate_folders
from styleforge.metrics.features import load_feature_net


@pytest.fixture
def real(h2z, tmp_path):
    d = tmp_path / "real"
    d.mkdir()
    for f in sorted((h2z / "testB").iterdir())[:4]:
        shutil.copy(f, d / f.name)
    return d


def test_second_evaluation_reads_the_cache_instead_of_the_network(real, tiny_feature_net, tmp_path):
    files = sorted(real.iterdir())
    net = load_feature_net(tiny_feature_net, 32)
    first, hit1 = folder_features(real, files, net, tmp_path / "cache", progress=False)
    seen = net.images_seen
    second, hit2 = folder_features(real, files, net, tmp_path / "cache", progress=False)
    assert (hit1, hit2) == (False, True) and seen == 4 and net.images_seen == 4
    assert np.array_equal(first.pool, second.pool) and np.array_equal(first.logits, second.logits)
    assert second.names == first.names
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def test_a_changed_added_or_touched_file_invalidates_the_entry(real, tiny_feature_net, tmp_path):
    net = load_feature_net(tiny_feature_net, 32)
    cache = tmp_path / "cache"

    def run():
        return folder_features(real, sorted(real.iterdir()), net, cache, progress=False)

    before = run()[0]
    f = sorted(real.iterdir())[0]
    with Image.open(f) as im:
        im.convert("RGB").transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(f, quality=80)  # rewritten
    feats, hit = run()
    assert not hit and not np.array_equal(feats.pool, before.pool)
    assert run()[1]
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched only
    assert not run()[1]
    shutil.copy(f, real / "extra.jpg")
    feats, hit = run()
    assert not hit and len(feats) == 5


def test_the_key_depends_on_the_network_identity(real, tiny_feature_net):
    files = sorted(real.iterdir())
    a = folder_key(real, files, load_feature_net(tiny_feature_net, 32))
    assert a == folder_key(real, files, load_feature_net(tiny_feature_net, 32))
    assert a != folder_key(real, files, load_feature_net(tiny_feature_net, 48))
    assert a != folder_key(real, files, load_feature_net(tiny_feature_net, 32, (0.0, 1.0)))


def test_a_damaged_entry_is_recomputed_and_no_cache_writes_nothing(real, tiny_feature_net, tmp_path):
    net = load_feature_net(tiny_feature_net, 32)
    files = sorted(real.iterdir())
    cache = tmp_path / "cache"
    folder_features(real, files, net, cache, progress=False)
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(b"garbage")
    feats, hit = folder_features(real, files, net, cache, progress=False)
    assert not hit and len(feats) == 4
    other = tmp_path / "other"
    folder_features(real, files, net, other, use_cache=False, progress=False)
    assert not other.exists()


def test_evaluate_reports_the_cache_state(real, h2z, tiny_feature_net, tmp_path):
    net = load_feature_net(tiny_feature_net, 32)
    opts = EvalOptions(cache_dir=str(tmp_path / "c"), progress=False)
    r1 = evaluate_folders(real, h2z / "testA", "kid", net, opts)
    r2 = evaluate_folders(real, h2z / "testA", "kid", net, opts)
    assert (r1["real_cache"], r2["real_cache"]) == ("miss", "hit")
    assert r1["metrics"]["kid"]["mean"] == r2["metrics"]["kid"]["mean"]
