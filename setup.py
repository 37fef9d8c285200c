from setuptools import find_packages, setup

setup(
    name="retail_assets",
    version="0.1.0",
    description="Retail data platform on Dagster + Spark: hourly CSV drops to a Hive warehouse.",
    # bench/ runs from the checkout (`retail bench`); it is not installed.
    packages=find_packages(exclude=["retail_assets_tests", "bench", "bench.*"]),
    # Links to the checkout's own files (a wheel holds copies): the column catalog the UI
    # shows, the Dagster instance and workspace `retail` commands use.
    package_data={"retail_assets": ["tables.md", "dagster.yaml", "workspace.yaml", "jvm/*.xml"]},
    python_requires=">=3.11,<3.13",
    # Ranges with floors, so a resolver can never backtrack into an old release. Dagster's
    # integrations are released in lockstep with the core (dagster-pyspark 0.29.N pins
    # dagster 1.13.N), so their pins keep the set together. Installs use requirements.lock
    # (README, "Dependencies"); retail_assets_tests/test_dependencies.py checks the two agree.
    install_requires=[
        "dagster>=1.13.27,<1.14",
        "dagster-webserver>=1.13.27,<1.14",
        # `dg`, Dagster's current CLI (`dg check defs`, `dg launch`): the core's release line.
        "dagster-dg-cli>=1.13.27,<1.14",
        "dagster-pyspark>=0.29.27,<0.30",
        # The cluster profile's Dagster storage on PostgreSQL (docs/profiles.md).
        "dagster-postgres>=0.29.27,<0.30",
        # Spark 4.0.x is the measured line (docs/design.md §1); [connect] brings grpc, pyarrow.
        "pyspark[connect]>=4.0.1,<4.1",
        "confluent-kafka>=2.6,<3",
        "pandas>=2.2,<3",
    ],
    # playwright: the UI's browser test drives Debian's Chromium (retail_assets_tests/test_ui.py);
    # deltalake (delta-rs): the tables read without Spark, as the README shows.
    extras_require={
        "dev": [
            "pytest>=8,<10",
            "ruff>=0.6",
            "uv>=0.5",
            "playwright>=1.50,<2",
            "deltalake[pandas]>=1.6,<2",
        ]
    },
    entry_points={"console_scripts": ["retail=retail_assets.cli:main"]},
)
