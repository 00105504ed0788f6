"""Strategies: how reads and writes reach the ops chain (`direct` now, `queue` batches writes)."""
