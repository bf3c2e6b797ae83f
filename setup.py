"""One build step on top of pyproject.toml: the Helm chart is copied into the package.

``helm/spamops`` stays where Argo CD, ``helm install`` and users find it; a wheel
(and the images built from it) carries a copy as ``spamops/deploy/chart/`` so
that ``spamops render isvc`` works from an installed package, outside any
checkout (:func:`spamops.deploy.render.default_chart`).  An editable install
copies nothing: it reads ``helm/spamops`` in the checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CHART = Path(__file__).resolve().parent / "helm" / "spamops"
PACKAGED = ("spamops", "deploy", "chart")


class build_py_with_chart(build_py):  # noqa: N801 - setuptools' command naming
    def run(self) -> None:
        if self.editable_mode:
            super().run()
            return
        if not (CHART / "Chart.yaml").is_file():
            raise SystemExit(f"{CHART}: no Chart.yaml; the spamops wheel ships the chart, build from a full checkout")
        # setuptools never empties build/lib: a package or chart file removed since an earlier build in
        # this checkout (src/spamops_dev, say) would otherwise land in the wheel again.
        shutil.rmtree(self.build_lib, ignore_errors=True)
        super().run()
        shutil.copytree(CHART, Path(self.build_lib, *PACKAGED))


setup(cmdclass={"build_py": build_py_with_chart})
