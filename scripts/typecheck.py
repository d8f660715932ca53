"""mypy --strict over the package as it is imported (``trustfence.*``).

The product folders are mapped into ``trustfence`` by pyproject's package-dir, which mypy cannot follow, so
this builds a throwaway tree of symlinks shaped like the import package and checks that.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    tree = ROOT / "build" / "typecheck"
    shutil.rmtree(tree, ignore_errors=True)
    for module, folder in sorted(mapping.items()):
        target = tree / module.replace(".", "/")
        if module == "trustfence" or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(ROOT / folder, target_is_directory=True)
    (tree / "trustfence").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "trustfence" / "__init__.py", tree / "trustfence" / "__init__.py")
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "-p", "trustfence"]
    return subprocess.run(cmd, cwd=tree).returncode


if __name__ == "__main__":
    sys.exit(main())
