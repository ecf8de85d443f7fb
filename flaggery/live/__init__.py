"""Keeping a snapshot current: change feeds, the replica, and the public Evaluator."""
