"""The model flags of ``translate``, ``stylize`` and ``cartoonize`` come from the declarations
(``commands.add_declared_flags``): every input a registered method declares, for translating
(``inference_inputs``) or for building it from a preset (``preset_inputs``), is a flag of the
command's ``--help`` with its help text, and no command writes such a flag by hand."""
import ast
import inspect
import re
from pathlib import Path

import pytest

from styleforge import config as C
from styleforge.checkpoint import save_model
from styleforge.cli import main
from styleforge.commands.inputs import flag_name
from styleforge.registry import available_methods, build_method, get_method_class

COMMANDS = Path(__file__).resolve().parents[2] / "src" / "styleforge" / "commands"
ROOT = Path(__file__).resolve().parents[2] / "data" / "style_transfer"
TINY = [p for p in C.list_presets() if p.startswith("tiny/")]


def _method(preset):
    cfg = C.resolve(preset)
    return build_method(cfg["method"], **cfg["model"])


def _optimisation(preset) -> bool:
    return get_method_class(C.resolve(preset)["method"]).not_trainable is not None


def _listed(inp) -> bool:
    return not (inp.kind == "choice" and len(inp.choices) < 2)  # nothing to choose: accepted, not listed


def _assert_in_help(text: str, inputs, where: str):
    squeezed = "".join(text.split())  # argparse wraps lines (and breaks words at hyphens)
    for inp in inputs:
        if not _listed(inp):
            continue
        flag = flag_name(inp.name)
        assert re.search(rf"(^|\s){re.escape(flag)}(\s|,|$)", text, re.M), f"{where}: {flag} not in --help"
        words = "".join(inp.help.split()[:4])
        assert words and words.replace("%", "") in squeezed.replace("%", ""), f"{where}: help of {flag} not shown"


def test_every_registered_method_has_a_tiny_preset():
    """The walks below go over the tiny presets: a method without one would escape them (the
    package's methods: other test files register methods of their own)."""
    package = {n for n in available_methods() if get_method_class(n).__module__.startswith("styleforge.")}
    assert package == {C.resolve(p)["method"] for p in TINY}


@pytest.mark.parametrize("preset", [p for p in C.list_presets() if _optimisation(p)])
def test_stylize_method_help_lists_every_declared_input_of_the_preset(preset, capsys):
    assert main(["stylize", "--method", preset, "--help"]) == 0
    text = capsys.readouterr().out
    cls = get_method_class(C.resolve(preset)["method"])
    assert cls.preset_inputs(), f"{cls.method_name} declares nothing to build it with"
    _assert_in_help(text, cls.preset_inputs(), f"stylize --method {preset}")
    _assert_in_help(text, _method(preset).inference_inputs()[1:], f"stylize --method {preset}")


@pytest.mark.parametrize("preset", [p for p in TINY if not _optimisation(p)])
def test_translate_and_cartoonize_help_list_every_declared_input_of_a_trained_model(preset, tmp_path, capsys):
    m = _method(preset)
    assert not type(m).preset_inputs(), f"{preset}: a trained model is loaded, not built from flags"
    save_model(tmp_path / "model", m)
    for cmd in ("translate", "cartoonize"):
        assert main([cmd, str(tmp_path / "model"), "--help"]) == 0
        _assert_in_help(capsys.readouterr().out, m.inference_inputs()[1:], f"{cmd} {preset}")


def test_a_preset_variant_of_an_optimisation_method_is_reached_by_a_declared_choice():
    """``gatys-inception`` is ``stylize --method gatys --encoder inception``: a preset named
    BASE-VALUE of the same method must be what some declared choice's VALUE picks from BASE, so
    a dropped declaration (no --encoder) fails here."""
    presets = set(C.list_presets())
    variants = [(p.rsplit("-", 1)[0], p) for p in presets if "-" in p and p.rsplit("-", 1)[0] in presets
                and _optimisation(p) and C.resolve(p)["method"] == C.resolve(p.rsplit("-", 1)[0])["method"]]
    assert ("gatys", "gatys-inception") in variants
    for base, variant in variants:
        cls = get_method_class(C.resolve(base)["method"])
        picks = {cls.preset_config(base, {i.name: v})[0] for i in cls.preset_inputs() if i.kind == "choice"
                 for v in i.choices}
        assert variant in picks, f"no declared input of {cls.method_name} picks preset {variant} from {base}"


@pytest.mark.parametrize("preset", [p for p in C.list_presets() if _optimisation(p)])
def test_every_declared_preset_input_sets_an_option_the_preset_has(preset):
    cls = get_method_class(C.resolve(preset)["method"])
    presets = set(C.list_presets())
    for inp in cls.preset_inputs():
        for value in (inp.choices if inp.kind == "choice" else ["weights.pth"]):
            picked, model = cls.preset_config(preset, {inp.name: value})
            if picked not in presets:  # a tiny preset has no variant: stylize says so (below)
                continue
            missing = set(model) - set(C.resolve(picked)["model"])
            assert not missing, f"{flag_name(inp.name)} {value}: preset {picked} has no model option {missing}"


def test_stylize_vgg_flag_reaches_the_method_and_a_missing_variant_is_one_line(tmp_path, capsys):
    base = ["stylize", str(ROOT / "content" / "flowers.jpg"), "--style", str(ROOT / "style" / "wave.jpg"),
            "--out", str(tmp_path / "out"), "--iterations", "1", "--quiet", "--method"]
    assert main(base + ["tiny/gatys", "--vgg", str(tmp_path / "nope.pth")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: VGG weights not found: {tmp_path / 'nope.pth'}"]
    assert main(base + ["tiny/gatys", "--encoder", "inception"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --encoder inception: no such encoder for --method tiny/gatys (no preset tiny/gatys-inception)"]
    assert main(base + ["tiny/photo", "--encoder", "inception"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --encoder inception: no such encoder for --method tiny/photo (photo takes vgg19)"]


def _hand_written_flags(path: Path) -> set[str]:
    flags = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            flags |= {a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("-")}
    return flags


def test_no_command_writes_a_flag_a_method_declares():
    """translate/stylize and cartoonize write none of the flags a model declares (``--direction``,
    ``--group``, ``--style`` ...), no command writes a flag for building a method (``--vgg``,
    ``--encoder``) or one named after a method, and their code names no method nor one of the
    values a method declares for building it (``vgg19``)."""
    translating, building, names = set(), set(), set(available_methods())
    choices = set()
    for preset in TINY:
        m = _method(preset)
        translating |= {flag_name(i.name) for i in m.inference_inputs()[1:]}
        building |= {flag_name(i.name) for i in type(m).preset_inputs()}
        choices |= {str(c) for i in type(m).preset_inputs() for c in i.choices}
    assert {"--direction", "--group", "--vgg", "--encoder"} <= translating | building
    for f in sorted(COMMANDS.glob("*.py")):
        flags = _hand_written_flags(f)
        assert not flags & building, f"{f.name} writes {flags & building} by hand"
        assert not flags & {flag_name(n) for n in names}, f.name
        if f.name in ("translate.py", "cartoonize.py"):
            assert not flags & translating, f"{f.name} writes {flags & translating} by hand"
            consts = {n.value for n in ast.walk(ast.parse(f.read_text()))
                      if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            assert not consts & (names | choices), f"{f.name} names {consts & (names | choices)}"


def test_no_command_names_a_model_option_of_a_method_built_from_a_preset():
    """``stylize --method PRESET`` builds the method from its preset's model options; what the
    command's flags change there (``--size``: gatys' ``sizes``, photo's ``size``) is the method's
    decision (``Method.preset_size``, ``preset_config``), so commands/ names none of them."""
    options = {p for n in available_methods() if get_method_class(n).not_trainable is not None
               for p in list(inspect.signature(get_method_class(n).__init__).parameters)[1:]}
    assert {"sizes", "size", "vgg_weights"} <= options
    for f in sorted(COMMANDS.glob("*.py")):
        consts = {n.value for n in ast.walk(ast.parse(f.read_text()))
                  if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not consts & options, f"{f.name} names {sorted(consts & options)}"
