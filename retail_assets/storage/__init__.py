"""Where and how everything is stored: hour keys and their folders (`hours`), the lake's
filesystem (`lake`), hourly metastore tables (`tables`), streaming checkpoints
(`checkpoints`), and the layout of the lake, the warehouse and the exports (`resource`, the
StorageResource every asset, sensor and command asks).

Only `resource` imports Dagster: Spark's Python workers (the stream's foreachBatch) import the
other modules, and Dagster would cost each of them half a second.
"""
