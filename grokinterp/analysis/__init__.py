"""Analysis: one pass over a run's checkpoint series, its measures.csv columns, the summary,
measures/ (pure mathematics) and llc/ (the local learning coefficient).
"""
