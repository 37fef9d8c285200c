"""p2 and p4 from one replay of N hourly groups (48 full, 6 quick), one run per hour:

- p2_hour48_vs_hour2: does an hour cost what its data costs, not what history costs? The run
  time of hour N over hour 2: medians of the last three hours over hours 2-4 (quick: the last
  two over hours 2-3), which damps one noisy hour; hour 1 pays table creation. Also per asset.
- p4_single_run_backfill_vs_sum: the first 6 groups again, on tables of their own, as one
  single-run backfill of 6 hours, over the sum of those 6 hours' runs in the replay.

Usage: python -m bench.p2_p4_hourly_replay [--quick]
"""

from statistics import median

from bench.harness import Bench, headline, main, say

P2_GOAL, P4_GOAL, BACKFILL_HOURS = 1.2, 1.2, 6


def measure(bench: Bench, quick: bool) -> dict:
    hours, rows = (6, 1_500) if quick else (48, 1_500)
    groups = bench.generate("replay", hours, rows, seed=48)
    with bench.servers():
        say(f"p2: {hours} hours of {rows:,} rows, one run per hour")
        replay = bench.run_hours(bench.storage("p2"), groups)
        say(f"p4: hours 1-{BACKFILL_HOURS} again, as one run")
        backfill = bench.run_hours(bench.storage("p4"), groups[:BACKFILL_HOURS], one_run=True)[0]
    span = 2 if quick else 3
    early, late = replay[1 : 1 + span], replay[-span:]
    p2 = median([r.seconds for r in late]) / median([r.seconds for r in early])
    steps = sorted(replay[-1].step_seconds)
    per_asset = {
        step: round(median([r.step_seconds[step] for r in late])
                    / median([r.step_seconds[step] for r in early]), 3)
        for step in steps
    }  # fmt: skip
    hour_sum = sum(r.seconds for r in replay[:BACKFILL_HOURS])
    p4 = backfill.seconds / hour_sum
    return {
        "headlines": [
            headline(f"p2 hour {hours} / hour 2 (run)", round(p2, 3), f"≤ {P2_GOAL}",
                     p2 <= P2_GOAL),
            headline(f"p4 backfill of {BACKFILL_HOURS} h / sum of hours", round(p4, 3),
                     f"≤ {P4_GOAL}", p4 <= P4_GOAL),
        ],
        "rows_per_group": rows,
        "p2_per_asset_ratio": per_asset,
        "p2_per_hour": [{"hour": i + 1, "run_s": round(r.seconds, 2),
                         **{k: round(v, 2) for k, v in r.step_seconds.items()}}
                        for i, r in enumerate(replay)],
        "p4_backfill_s": round(backfill.seconds, 2),
        "p4_backfill_steps_s": {k: round(v, 2) for k, v in backfill.step_seconds.items()},
        "p4_sum_of_hours_s": round(hour_sum, 2),
    }  # fmt: skip


if __name__ == "__main__":
    main("p2_p4_hourly_replay", measure)
