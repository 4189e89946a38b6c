"""distkeras.datasets (filled in by its own work item)."""
