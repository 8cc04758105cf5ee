"""ament_python package definition; also installs with pip into a venv."""

from glob import glob

from setuptools import Extension, find_namespace_packages, setup

PACKAGE = "nc_safety"

# The obstacle check's inner loop in C. Optional: without a compiler the package still
# installs and nc_safety.core.geometry measures clearance with NumPy instead.
# -ffp-contract=off keeps the compiler from fusing multiply-adds, so results do not depend
# on the target's instruction set.
CLEARANCE = Extension(
    f"{PACKAGE}.core._clearance",
    sources=[f"{PACKAGE}/core/_clearance.c"],
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-trapping-math"],
    optional=True,
)

setup(
    name=PACKAGE,
    version="0.1.0",
    # Namespace discovery also lists the data folders, so their files install as package
    # data without setuptools warning about folders it would otherwise ignore.
    packages=find_namespace_packages(include=["nc_safety", "nc_safety.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"lib/{PACKAGE}", [f"resource/{PACKAGE}_node"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/config/norms", glob("config/norms/*.yaml")),
        (f"share/{PACKAGE}/config/scenarios", glob("config/scenarios/*.yaml")),
        (f"share/{PACKAGE}/config/scenes", glob("config/scenes/*.yaml")),
    ],
    ext_modules=[CLEARANCE],
    package_data={"nc_safety.data.recordings": ["*.md", "*/*/*"], "nc_safety.core": ["_clearance.pyi"]},
    include_package_data=True,
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="nc_safety maintainers",
    maintainer_email="maintainers@nc-safety.invalid",
    description="ROS 2 safety layer that refuses unsafe commands with a justification.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "nc-safety = nc_safety.console.cli:main",
            "nc_safety_node = nc_safety.ros.node:main",
        ],
    },
)
