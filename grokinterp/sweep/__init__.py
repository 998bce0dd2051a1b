"""Sweeps: one TOML spec, planned into batches, run in-process, on Ray or on SLURM.

    grokinterp sweep SPEC [--executor local|ray|slurm]   # plan, then train and analyse
    grokinterp sweep-report SWEEP                        # the table and the HTML report

Modules: `spec` (read, check, plan), `plan` (run states, estimates), `batch` (what a worker
does with one batch), `executors` (the driver and the local executor), `ray_executor` and
`slurm_executor` (imported only when chosen), `table` (sweep-report's table), `stats` (grokking
epochs across seeds). The sweep folder's layout is `grokinterp.storage.sweep_dir`; the page,
`grokinterp.report.sweep_page`.
"""
