"""Storage: the run directory, `open_run`, the environment record, the analysis directory, the
sweep folder, importers/ (one module per foreign layout), export and trackers.
"""
