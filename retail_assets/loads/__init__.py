"""What each layer writes for an hour, and the reads it builds on: Spark and the storage
layout, no Dagster. The assets declare, call these and record what was written; a script
without Dagster (bench p1's baseline) calls the same functions."""
