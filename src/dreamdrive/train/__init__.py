"""Training infrastructure every network shares: one checkpoint format, run folders that resume after a kill."""
