"""Developer tools that write shipped files (UI twins of the API workflows, the pack's and core's node dumps); not
imported by the pack."""
