"""Method comparison: read runs (offline W&B folders, results JSON, a W&B project), tables, plots, dashboards,
local sweeps. Importing this package does not import torch."""
