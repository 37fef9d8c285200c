"""Where and how everything is stored: hour keys and their folders (`hours`), the lake's
filesystem (`lake`), hourly metastore tables (`tables`), streaming checkpoints
(`checkpoints`), and the layout of the lake, the warehouse and the exports (`resource`, the
StorageResource every asset, sensor and command asks).

Only `resource` imports Dagster: the rest is plain Spark and pyarrow, which the benchmarks and
the command line use without loading Dagster.
"""
