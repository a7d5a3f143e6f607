"""Start-up work a run does not need is not done (issue 15): the bundled matrix is loaded from
its compiled form (validated when compiled, and equal to the YAML's validated load), the CLI
imports a command's module only when that command runs, and a local scan imports none of
jsonschema, PyYAML, rich, paramiko, Ansible, the Kubernetes client or the distro library.
These are behaviour checks; the timings are in bench/RESULTS-local.md, never asserted here."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nodecheck import matrix as mx

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests/fixtures/hosts/debian-12/root"
HEAVY = ("jsonschema", "yaml", "rich", "paramiko", "ansible", "ansible_runner", "kubernetes", "distro")


def test_compiled_matrix_is_the_validated_yaml():
    yaml_path = mx.validate.REPO_MATRIX / "sysbox.yaml"
    doc = json.loads(mx.compiled_path(yaml_path).read_text(encoding="utf-8"))
    assert doc["format"] == mx.COMPILED_FORMAT
    # Stale (sysbox.yaml or schema.json edited since): run `python -m nodecheck.matrix --compile`.
    assert {k: doc[k] for k in ("yaml_key", "schema_key")} == mx.compiled._digests(yaml_path.read_text(encoding="utf-8"))
    assert doc["data"] == mx.read_raw(yaml_path)


def test_default_load_equals_the_validated_load():
    fast, full = mx.load(), mx.load(mx.default_path())
    assert fast == full and fast.raw == full.raw and fast.path == full.path
    assert [r.raw for r in fast.releases] == [r.raw for r in full.releases]
    assert [r.rules for r in fast.releases] == [r.rules for r in full.releases]


def _copy_matrix(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "matrix"
    shutil.copytree(mx.validate.REPO_MATRIX, d)
    monkeypatch.setattr(mx.validate, "REPO_MATRIX", d)
    monkeypatch.delenv(mx.ENV, raising=False)
    return d


def test_a_stale_compiled_matrix_is_not_used(tmp_path, monkeypatch):
    d = _copy_matrix(tmp_path, monkeypatch)
    y = d / "sysbox.yaml"
    old = mx.load().version
    text = y.read_text()
    assert f'matrix_version: "{old}"' in text
    y.write_text(text.replace(f'matrix_version: "{old}"', 'matrix_version: "9999.1.1"', 1))
    assert mx.load().version == "9999.1.1"  # the YAML, validated, not the compiled copy


def test_an_invalid_yaml_with_a_stale_compiled_file_still_fails(tmp_path, monkeypatch):
    d = _copy_matrix(tmp_path, monkeypatch)
    (d / "sysbox.yaml").write_text("releases: not-a-list\n")
    with pytest.raises(mx.MatrixError, match="invalid matrix"):
        mx.load()


def test_a_forged_compiled_file_is_refused_when_the_schema_changes(tmp_path, monkeypatch):
    d = _copy_matrix(tmp_path, monkeypatch)
    s = d / "schema.json"
    s.write_text(s.read_text() + "\n")  # same schema, other bytes: the key no longer matches
    c = mx.compiled_path(d / "sysbox.yaml")
    doc = json.loads(c.read_text())
    doc["data"]["matrix_version"] = "forged"
    c.write_text(json.dumps(doc))
    assert mx.load().version != "forged"


def test_a_named_matrix_file_is_always_validated(tmp_path):
    d = tmp_path / "m"
    shutil.copytree(mx.validate.REPO_MATRIX, d)
    (d / "sysbox.yaml").write_text("releases: not-a-list\n")  # sysbox.compiled.json beside it is ignored
    with pytest.raises(mx.MatrixError, match="invalid matrix"):
        mx.load(d / "sysbox.yaml")


def _modules_after(argv: list[str]) -> set[str]:
    code = ("import sys, io, contextlib\nfrom nodecheck.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    rc = main(sys.argv[1:])\n"
            "print(rc, ' '.join(sorted(sys.modules)))")
    p = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO,
                       env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"})
    rc, mods = p.stdout.strip().split(" ", 1)
    assert int(rc) <= 3, p.stderr
    return set(mods.split())


@pytest.mark.parametrize("argv", [["--help"], ["scan", "--root", str(FIXTURE), "-o", "json"],
                                  ["scan", "--root", str(FIXTURE), "-o", "json", "--sysbox", "0.6.7"]])
def test_start_up_imports_only_what_the_command_needs(argv):
    mods = _modules_after(argv)
    assert not {m for m in mods if m.split(".")[0] in HEAVY}
    assert not {m for m in mods if m.startswith("nodecheck.commands.") and m != "nodecheck.commands._common"
                and m != "nodecheck.commands." + argv[0]}


def test_a_named_matrix_still_imports_the_validator(tmp_path):
    mods = _modules_after(["scan", "--root", str(FIXTURE), "-o", "json", "--matrix", str(mx.default_path())])
    assert "jsonschema" in mods and "yaml" in mods


def test_help_lists_each_command_with_its_own_first_paragraph():
    from nodecheck import cli

    for name, (module, attr, first) in cli.COMMANDS.items():
        cmd = cli._load_command(name)
        assert cmd is not None and cmd.name == name
        assert not cmd.short_help and not cmd.hidden and not cmd.deprecated
        assert cmd.help.partition("\n\n")[0] == first, f"update cli.COMMANDS[{name!r}] to the command's help"
        stand_in = cli.click.Command(name, help=first)
        for limit in range(5, 130):
            assert stand_in.get_short_help_str(limit) == cmd.get_short_help_str(limit)


def test_help_is_the_eager_groups_help():
    # The listing from stand-ins equals what click prints with every command loaded.
    from click.testing import CliRunner

    from nodecheck import cli

    lazy = CliRunner().invoke(cli.cli, ["--help"], terminal_width=100).output
    for name in cli.COMMANDS:
        cli.cli.get_command(None, name)  # load them all
    assert set(cli.COMMANDS) <= set(cli.cli.commands)
    eager = CliRunner().invoke(cli.cli, ["--help"], terminal_width=100).output
    assert lazy == eager and "Commands:" in lazy


def test_the_build_checks_freshness_as_the_loader_does(tmp_path):
    src = (REPO / "setup.py").read_text()
    ns: dict = {"__file__": str(REPO / "setup.py"), "__name__": "nc_setup_py"}
    exec(compile(src.replace("setup(cmdclass=", "dict(cmdclass="), "setup.py", "exec"), ns)  # no build
    d = tmp_path / "matrix"
    shutil.copytree(mx.validate.REPO_MATRIX, d)
    ns["check_compiled_matrix"](d)  # fresh: passes
    text = (d / "sysbox.yaml").read_text(encoding="utf-8")
    assert ns["_key"](text.encode()) == mx.compiled._digests(text)["yaml_key"]
    (d / "sysbox.yaml").write_text((d / "sysbox.yaml").read_text() + "\n")
    with pytest.raises(SystemExit, match="stale"):
        ns["check_compiled_matrix"](d)


def test_each_release_carries_exactly_the_rules_that_apply_to_it():
    m = mx.load()
    for r in m.releases:
        assert r.rules == tuple(x for x in m.rules if x.applies_to_release(r.version))


def test_compiled_kubernetes_requirements_are_the_validated_yaml(tmp_path, monkeypatch):
    from nodecheck.k8s import requirements

    k = mx.validate.REPO_MATRIX / "kubernetes.yaml"
    assert mx.load_compiled(k, requirements.schema_file()) == requirements.read_validated(k)
    assert requirements.load() == requirements.load(str(k))
    # A stale compiled file is not used: the edited YAML is read (and validated).
    d = _copy_matrix(tmp_path, monkeypatch)
    ky = d / "kubernetes.yaml"
    ky.write_text(ky.read_text() + "\n# edited\n")
    assert mx.load_compiled(ky, d / "kubernetes.schema.json") is None
    # Nor one beside a user's file.
    u = tmp_path / "user"
    shutil.copytree(mx.validate.REPO_MATRIX, u)
    assert mx.load_compiled(u / "kubernetes.yaml", u / "kubernetes.schema.json") is None
