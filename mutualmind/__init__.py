"""MutualMind: a private machine-learning data marketplace."""

__version__ = "0.1.0"
