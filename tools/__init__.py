"""Developer tools that write shipped files (UI twins of the API workflows, the pack's node dump); not imported by
the pack."""
