"""Data loading, training and evaluation of model packs."""
