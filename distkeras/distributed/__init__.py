"""distkeras.distributed (filled in by its own work item)."""
