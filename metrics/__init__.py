"""Pure-torch clip metrics used by benchmarks and the evaluate tool (nothing here runs in the sampling path)."""
