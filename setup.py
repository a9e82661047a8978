"""Build script. The metadata (name, dependencies, extras, entry point) is in pyproject.toml;
this file only says which packages go into the wheel, because pyproject.toml cannot both
discover packages and map data folders that live outside the package:

* every ``fusionlab*`` package found in the tree, folders without ``__init__.py`` included;
* the top-level data folders ``ablations/`` and ``notebooks/`` (one copy in git) mapped into
  the wheel as ``fusionlab/ablations`` and ``fusionlab/notebooks`` (only the run/report
  notebooks; the walkthroughs stay in the checkout). ``fusionlab.resources.shipped_dir``
  finds them in either layout. The training configs live inside the package
  (``fusionlab/configs``), so both layouts have them there.
"""
from setuptools import find_namespace_packages, setup

DATA_FOLDERS = {  # package name in the wheel -> folder in the checkout
    "fusionlab.ablations": "ablations",
    "fusionlab.notebooks": "notebooks",
}

setup(
    # namespace packages too: the data folders inside the package (assets, configs, ablation
    # examples) are then packages whose files [tool.setuptools.package-data] ships - setuptools
    # warns about shipped files in folders that are not packages (20 warnings in `make demo`)
    packages=find_namespace_packages(include=["fusionlab", "fusionlab.*"], exclude=["*.__pycache__"])
    + list(DATA_FOLDERS) + ["fusionlab.ablations.captions"],
    package_dir=DATA_FOLDERS,  # which files of these folders ship: [tool.setuptools.package-data]
)
