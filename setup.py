"""The repository's top-level ``containers/`` (image recipes, image map) and ``jobs/`` (job definitions)
ship inside the wheel as ``workbench/_data/``; everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("containers", "jobs")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the checkout itself
            return
        for name in SHIPPED:
            shutil.copytree(Path(name), Path(self.build_lib, "workbench", "_data", name), dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithData})
