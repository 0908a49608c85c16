"""Build step: the wheel carries the top-level ``templates/`` as ``publisher/templates/``.

Everything else is declared in pyproject.toml. The built-in templates stay at the top of
the repository, where the README and operators look for them, and are copied into the
package only when a wheel is built, so there is one copy to edit. An installed package
finds them next to its modules; a checkout or an editable install (which copies nothing)
reads the repository's folder (see ``publisher.compose.render.builtin_templates``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATES = Path(__file__).resolve().parent / "templates"


class BuildPyWithTemplates(build_py):
    """``build_py`` plus a fresh copy of ``templates/`` into the built package."""

    def run(self) -> None:
        """Build the modules, then replace the package's templates with the repository's."""
        super().run()
        if self.editable_mode:
            return
        if not TEMPLATES.is_dir():
            raise FileNotFoundError(f"{TEMPLATES}: the built-in templates are missing")
        target = Path(self.build_lib, "publisher", "templates")
        shutil.rmtree(target, ignore_errors=True)  # no template deleted upstream survives
        shutil.copytree(TEMPLATES, target)


setup(cmdclass={"build_py": BuildPyWithTemplates})
