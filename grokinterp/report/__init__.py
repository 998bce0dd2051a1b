"""Reports: self-contained plotly pages built from analysis directories and sweep tables."""
