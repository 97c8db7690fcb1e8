"""The catalogue (styleforge.zoo, zoo.yaml): every named model of the authors' download
scripts, each with a source, a licence and an importer; unknown names get the closest ones."""
import pytest

from styleforge import zoo
from styleforge.errors import ConfigError
from styleforge.registry import get_importer


def test_catalogue_has_every_named_model_of_the_authors_scripts_with_a_licence():
    cat = zoo.catalogue()
    # junyanz's download scripts: 18 CycleGAN and 5 pix2pix names; pytorch/examples' 4 styles
    assert sum(n.startswith("cyclegan/") and n != "cyclegan/vintagify" for n in cat) == 18
    assert {n for n in cat if n.startswith("pix2pix/")} == {
        "pix2pix/edges2shoes", "pix2pix/sat2map", "pix2pix/map2sat", "pix2pix/facades_label2photo", "pix2pix/day2night"}
    assert {"johnson/candy", "johnson/mosaic", "johnson/rain_princess", "johnson/udnie", "adain/default",
            "vgg/vgg19-torchvision", "vgg/vgg19-caffe", "cin/multistyle26", "cyclegan/vintagify",
            "funit/animal149", "munit/edges2shoes", "unit/gta2city", "photo2cartoon/default"} <= set(cat)
    assert cat["pix2pix/facades_label2photo"].options == {"direction": "BtoA"}
    for e in cat.values():
        assert e.source.licence and e.source.page.startswith("https://"), e.name
        assert e.url or e.manual or e.packaged, e.name
        assert e.kind == "vgg" or get_importer(e.method)  # every model goes through a registered importer
    # NVIDIA's models are non-commercial, and say so
    assert {n for n, e in cat.items() if e.non_commercial} == {"funit/animal149", "munit/edges2shoes", "unit/gta2city"}
    assert all("NON-COMMERCIAL" in cat[n].source.licence for n in ("funit/animal149", "unit/gta2city"))
    # torchvision-style names carry the start of the file's SHA-256
    assert cat["vgg/vgg19-torchvision"].sha256 == "dcbb9e9d"


def test_unknown_name_suggests_the_closest_names():
    with pytest.raises(ConfigError, match="did you mean cyclegan/horse2zebra"):
        zoo.get("cyclegan/horse2zebr")
    with pytest.raises(ConfigError, match="cyclegan/horse2zebra"):
        zoo.get("horse2zebra")


@pytest.mark.parametrize("name, preset, modules, copies", [
    ("funit/animal149", "funit/default", ("gen",), 2),  # gen and gen_test
    ("munit/edges2shoes", "munit/edges2shoes", ("gen_a", "gen_b"), 1),
    ("unit/gta2city", "unit/gta2city", ("gen_a", "gen_b"), 1),
    ("photo2cartoon/default", "photo2cartoon/default", ("genA2B",), 1),
])
def test_a_size_not_published_is_the_release_configs_float32_parameters_and_says_so(name, preset, modules, copies):
    """Drive-only models: the listing shows an estimate (marked ~) equal, within 1 MB, to the
    float32 parameters of the preset that mirrors the authors' release configuration."""
    from styleforge import config as C
    from styleforge.commands.models import _size
    from styleforge.registry import build_method

    e = zoo.get(name)
    cfg = C.resolve(preset)
    m = build_method(cfg["method"], **cfg.get("model", {}))
    mb = sum(p.numel() for n in modules for p in getattr(m, n).parameters()) * 4 * copies / 1e6
    assert e.size_estimated and abs(e.size_mb - mb) < 1.0, (e.size_mb, mb)
    assert _size(e.size_mb, e.size_estimated).startswith("~")


def test_every_download_has_a_size():
    assert [n for n, e in zoo.catalogue().items() if e.size_mb is None and not e.packaged] == []
