"""Config parsing: the issue's example works as written; every mistake is named precisely."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from robustbench_local.bench.config import ConfigError, default_config, load_config

ISSUE_EXAMPLE = """
[run]
name = "digits-quick"
dataset = "digits"
n_examples = 400
batch_size = 256
seed = 0

[[models]]
name = "standard"
zoo = "digits-cnn"
recipe = "standard"

[[models]]
name = "ensemble"
zoo = "digits-cnn"
recipe = "standard"
ensemble = 5

[[models]]
name = "mc-dropout"
zoo = "digits-cnn-dropout"
recipe = "standard"
mc_samples = 30

[[attacks]]
name = "fgsm"

[[attacks]]
name = "pgd"
steps = 20

[sweep]
eps = [0.0, 0.05, 0.1, 0.2]
norm = "linf"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bench.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_issue_example_parses(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, ISSUE_EXAMPLE))
    assert config.run.name == "digits-quick" and config.run.n_examples == 400
    assert [m.name for m in config.models] == ["standard", "ensemble", "mc-dropout"]
    assert config.models[1].ensemble == 5 and config.models[2].mc_samples == 30
    assert config.models[2].stochastic and not config.models[0].stochastic
    assert [(a.label, dict(a.params)) for a in config.attacks] == [
        ("fgsm", {}),
        ("pgd", {"steps": 20}),
    ]
    assert config.sweep.eps == (0.0, 0.05, 0.1, 0.2)


def test_embedded_default_matches_the_issue() -> None:
    config = default_config()
    assert config.run.dataset == "digits"
    assert {m.name for m in config.models} == {"standard", "pgd-at", "ensemble", "mc-dropout"}
    assert {a.name for a in config.attacks} == {"fgsm", "pgd"}
    assert dict(config.attacks[1].params)["steps"] == 20
    assert config.sweep.eps == (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
    assert config.shift is not None  # a small natural-shift section: 6 x 5 + 2 OOD sets
    assert len(config.shift.corruptions) == 6 and config.shift.severities == (1, 2, 3, 4, 5)
    assert config.shift.ood == ("noise", "sklearn-photos")


def test_digest_is_stable_and_sensitive() -> None:
    a, b = default_config(), default_config()
    assert a.digest() == b.digest()
    text = ISSUE_EXAMPLE
    import tomllib

    from robustbench_local.bench.config import parse_config

    base = parse_config(tomllib.loads(text)).digest()
    changed = parse_config(tomllib.loads(text.replace("seed = 0", "seed = 1"))).digest()
    assert base != changed


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        (
            "n_examples = 400",
            "n_exemples = 400",
            r"bench.toml: \[run\].n_exemples: unknown key 'n_exemples' \(did you mean 'n_examples'",
        ),
        (
            'zoo = "digits-cnn"\nrecipe = "standard"\n\n[[models]]\nname = "ensemble"',
            'zoo = "digit-cnn"\nrecipe = "standard"\n\n[[models]]\nname = "ensemble"',
            r"\[\[models\]\] 'standard'.zoo: unknown name 'digit-cnn' \(did you mean 'digits-cnn'",
        ),
        (
            'dataset = "digits"',
            'dataset = "digitz"',
            r"\[run\].dataset: unknown name 'digitz' \(did you mean 'digits'",
        ),
        ('name = "pgd"', 'name = "pgdd"', r"\[\[attacks\]\] #2.name: unknown attack 'pgdd'"),
        (
            "steps = 20",
            "stepz = 20",
            r"\[\[attacks\]\] 'pgd'.stepz: unknown pgd parameter 'stepz' \(did you mean 'steps'",
        ),
        ("steps = 20", 'steps = "20"', r"\[\[attacks\]\] 'pgd'.steps: must be an integer; got str"),
        ("steps = 20", "steps = true", r"'pgd'.steps: must be an integer; got bool True"),
        ("batch_size = 256", "batch_size = 0", r"\[run\].batch_size: must be an integer >= 1"),
        (
            "eps = [0.0, 0.05, 0.1, 0.2]",
            "eps = [0.0, -0.05]",
            r"\[sweep\].eps: must hold finite numbers >= 0; got -0.05",
        ),
        ("eps = [0.0, 0.05, 0.1, 0.2]", 'eps = [0.0, "0.1"]', r"\[sweep\].eps: must hold numbers"),
        ('norm = "linf"', 'norm = "l3"', r"\[sweep\].norm: unknown norm 'l3'"),
        (
            'norm = "linf"',
            'norm = "l2"',
            r"\[\[attacks\]\] 'fgsm'.name: attack 'fgsm' supports norm linf, but \[sweep\] norm is",
        ),
        ("ensemble = 5", "ensemble = 5\nmc_samples = 3", r"choose `ensemble` or `mc_samples`"),
        (
            'recipe = "standard"\nensemble',
            'recipe = "standrd"\nensemble',
            r"\[\[models\]\] 'ensemble'.recipe: unknown recipe 'standrd' \(did you mean 'standard'",
        ),
        ("mc_samples = 30", "mc_samples = 0", r"'mc-dropout'.mc_samples: must be an integer >= 1"),
    ],
)
def test_config_errors_name_file_section_and_key(tmp_path, old, new, pattern) -> None:
    assert old in ISSUE_EXAMPLE  # the edit must apply, or the test would test nothing
    path = _write(tmp_path, ISSUE_EXAMPLE.replace(old, new, 1))
    with pytest.raises(ConfigError, match=pattern):
        load_config(path)


def test_duplicate_model_names_and_attack_labels(tmp_path) -> None:
    twice = ISSUE_EXAMPLE.replace('name = "ensemble"', 'name = "standard"')
    with pytest.raises(ConfigError, match=r"two \[\[models\]\] share the name 'standard'"):
        load_config(_write(tmp_path, twice))
    two_pgd = ISSUE_EXAMPLE + '\n[[attacks]]\nname = "pgd"\nsteps = 50\n'
    with pytest.raises(ConfigError, match=r"share the name 'pgd'.*set `label`"):
        load_config(_write(tmp_path, two_pgd))
    labelled = ISSUE_EXAMPLE + '\n[[attacks]]\nname = "pgd"\nlabel = "pgd-50"\nsteps = 50\n'
    assert [a.label for a in load_config(_write(tmp_path, labelled)).attacks][-1] == "pgd-50"


def test_missing_checkpoint_and_data_folder(tmp_path) -> None:
    user = ISSUE_EXAMPLE + (
        '\n[[models]]\nname = "mine"\nfactory = "mypkg.models:build"\n'
        'checkpoint = "weights.safetensors"\n'
    )
    with pytest.raises(
        ConfigError,
        match=r"'mine'.checkpoint: file '.*weights.safetensors' "
        r"does not exist",
    ):
        load_config(_write(tmp_path, user))
    no_ckpt = ISSUE_EXAMPLE + '\n[[models]]\nname = "mine"\nfactory = "mypkg.models:build"\n'
    with pytest.raises(ConfigError, match=r"'mine'.checkpoint: a `factory` model needs"):
        load_config(_write(tmp_path, no_ckpt))
    mnist = ISSUE_EXAMPLE.replace('dataset = "digits"', 'dataset = "mnist"\ndata_root = "data"')
    with pytest.raises(ConfigError, match=r"\[run\].data_root: folder '.*data' does not exist"):
        load_config(_write(tmp_path, mnist))
    no_root = ISSUE_EXAMPLE.replace('dataset = "digits"', 'dataset = "mnist"')
    with pytest.raises(ConfigError, match=r"\[run\].data_root: dataset 'mnist' is read from disk"):
        load_config(_write(tmp_path, no_root))


def test_relative_paths_resolve_against_the_config_folder(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "weights.safetensors").write_bytes(b"")
    text = ISSUE_EXAMPLE.replace('dataset = "digits"', 'dataset = "mnist"\ndata_root = "data"')
    text = text.replace('zoo = "digits-cnn', 'zoo = "mnist-cnn')  # the zoo models for mnist
    text += (
        '\n[[models]]\nname = "mine"\nfactory = "torch.nn:Identity"\n'
        'checkpoint = "weights.safetensors"\n'
    )
    config = load_config(_write(tmp_path, text))
    assert config.run.data_root == str(tmp_path / "data")
    assert config.models[-1].checkpoint == str(tmp_path / "weights.safetensors")


def test_not_toml_and_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"bench.toml: not valid TOML"):
        load_config(_write(tmp_path, "[run\nname="))
    with pytest.raises(ConfigError, match=r"config file '.*nope.toml' does not exist"):
        load_config(tmp_path / "nope.toml")


def test_attack_samples_default_and_errors(tmp_path) -> None:
    config = load_config(_write(tmp_path, ISSUE_EXAMPLE))
    mc = config.models[2]
    assert (mc.mc_samples, mc.attack_mc_samples) == (30, 8)
    assert config.models[0].attack_mc_samples is None
    custom = ISSUE_EXAMPLE.replace("mc_samples = 30", "mc_samples = 30\nattack_samples = 30")
    assert load_config(_write(tmp_path, custom)).models[2].attack_mc_samples == 30
    stray = ISSUE_EXAMPLE.replace("ensemble = 5", "ensemble = 5\nattack_samples = 4")
    with pytest.raises(ConfigError, match=r"'ensemble'.attack_samples: `attack_samples` applies"):
        load_config(_write(tmp_path, stray))


@pytest.mark.parametrize(
    ("attack", "line", "pattern"),
    [
        (
            "pgd",
            'loss = "foo"',
            r"'pgd'.loss: loss must be one of 'ce', 'margin', 'dlr'; got 'foo'",
        ),
        ("pgd", "steps = 0", r"'pgd'.steps: steps must be an int >= 1; got 0"),
        ("pgd", "restarts = 0", r"'pgd'.restarts: restarts must be an int >= 1; got 0"),
        ("pgd", "eot_samples = 0", r"'pgd'.eot_samples: eot_samples must be an int >= 1"),
        ("pgd", 'select = "bogus"', r"'pgd'.select: select must be one of 'first_fooling'"),
        (
            "pgd",
            'early_stop = true\nselect = "max_loss"',
            r"'pgd'.select: early_stop=True stops at the first fooling iterate",
        ),
        ("pgd", "early_stop = 1", r"'pgd'.early_stop: must be true or false; got int 1"),
        ("pgd", "select = 1", r"'pgd'.select: must be a string; got int 1"),
        ("pgd", 'step_size = "big"', r"'pgd'.step_size: must be a number; got str"),
        ("apgd-ce", "steps = 0", r"'apgd-ce'.steps: steps must be an int >= 1; got 0"),
        ("apgd-dlr", "rho = 2", r"'apgd-dlr'.rho: rho must be a number in \[0, 1\]; got 2"),
        ("apgd-ce", "momentum = 1.5", r"'apgd-ce'.momentum: momentum must be a number in \[0, 1\]"),
        ("apgd-ce", 'select = "bogus"', r"'apgd-ce'.select: select must be one of"),
        ("fgsm", 'loss = "foo"', r"'fgsm'.loss: loss must be one of 'ce', 'margin', 'dlr'"),
        ("square", "n_queries = 0", r"'square'.n_queries: n_queries must be an int >= 1; got 0"),
        ("square", "p_init = 2", r"'square'.p_init: p_init must be a number in \(0, 1\]; got 2"),
        ("square", "p_init = 0", r"'square'.p_init: p_init must be a number in \(0, 1\]"),
        ("pgd-adaptive", "steps = 0", r"'pgd-adaptive'.steps: steps must be an int >= 1"),
        ("pgd-adaptive", "weight = -1.0", r"'pgd-adaptive'.weight: must be a finite number >= 0"),
    ],
)
def test_attack_values_are_checked_by_the_attacks_own_rules(
    tmp_path, attack, line, pattern
) -> None:
    # Caught when the config is read, before any model is trained.
    text = ISSUE_EXAMPLE + f'\n[[attacks]]\nname = "{attack}"\nlabel = "x"\n{line}\n'
    with pytest.raises(
        ConfigError, match=r"bench.toml: \[\[attacks\]\] " + pattern.replace(f"'{attack}'", "'x'")
    ):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("attack", "lines"),
    [
        ("pgd", 'early_stop = false\nselect = "max_loss"\nstep_size = 1\nloss = "margin"'),
        ("apgd-ce", 'early_stop = true\nselect = "first_fooling"\nrho = 1\nmomentum = 0.5'),
        ("square", "n_queries = 10\np_init = 1"),
        ("pgd-adaptive", "steps = 5\nweight = 0.5\nstep_size = 0.01"),
    ],
)
def test_good_attack_values_pass(tmp_path, attack, lines) -> None:
    text = ISSUE_EXAMPLE + f'\n[[attacks]]\nname = "{attack}"\nlabel = "x"\n{lines}\n'
    assert load_config(_write(tmp_path, text)).attacks[-1].name == attack
