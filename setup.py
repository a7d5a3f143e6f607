"""Build hook: ship the top-level matrix/ and playbooks/ inside the package.

The compatibility matrix (matrix/sysbox.yaml + schema.json) and the Ansible project
(playbooks/) live at the top of the repository, where people and `ansible-playbook` look
for them. They are the only copies in the repository: building a wheel (`pip install .`,
`pip wheel .`, or from the sdist, which carries both trees through MANIFEST.in) copies
them to nodecheck/data/matrix and nodecheck/data/playbooks inside the build, where
nodecheck.matrix and nodecheck.install find them once installed. An editable install
(`pip install -e .`) needs no copy: the loaders read the checkout's trees first.

The bundled matrix is validated at build time, not on every run: matrix/sysbox.compiled.json
(written by `python -m nodecheck.matrix --compile` after a full validation) must have been
compiled from exactly these sysbox.yaml and schema.json bytes, or the build fails.

Everything else about the package is declared in pyproject.toml.
"""

import json
import shutil
import zlib
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# source directory in the repository -> where it goes inside the installed package
DATA_TREES = {"matrix": "nodecheck/data/matrix", "playbooks": "nodecheck/data/playbooks"}
# The files a tree must have: a build that lost them must fail, not ship a broken wheel.
REQUIRED = {"matrix": ("sysbox.yaml", "schema.json", "sysbox.compiled.json", "kubernetes.compiled.json"),
            "playbooks": ("site.yml", "ansible.cfg")}
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "*.retry")


def _key(b: bytes) -> str:
    return f"{len(b)}:{zlib.crc32(b):08x}"  # nodecheck.matrix.compiled._digests (tests/test_startup.py)


def check_compiled_matrix(tree: Path) -> None:
    """A compiled file that is not its YAML's would ship data no schema checked."""
    for name, schema in (("sysbox", "schema.json"), ("kubernetes", "kubernetes.schema.json")):
        doc = json.loads((tree / f"{name}.compiled.json").read_text(encoding="utf-8"))
        want = {"yaml_key": _key((tree / f"{name}.yaml").read_bytes()), "schema_key": _key((tree / schema).read_bytes())}
        if {k: doc.get(k) for k in want} != want:
            raise SystemExit(f"setup.py: {tree / f'{name}.compiled.json'} is stale: run `python -m nodecheck.matrix --compile`")


class build_py_with_data(build_py):  # noqa: N801 - setuptools command naming
    def run(self):
        super().run()
        for src, dest in DATA_TREES.items():
            tree = HERE / src
            missing = [f for f in REQUIRED[src] if not (tree / f).is_file()]
            if missing:
                raise SystemExit(f"setup.py: {tree} lacks {', '.join(missing)}: cannot build nodecheck without it")
            if src == "matrix":
                check_compiled_matrix(tree)
            target = Path(self.build_lib) / dest
            shutil.rmtree(target, ignore_errors=True)  # a stale build/ must not keep deleted files
            shutil.copytree(tree, target, ignore=IGNORE)


setup(cmdclass={"build_py": build_py_with_data})
