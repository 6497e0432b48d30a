"""Ensembles: combining finished runs, and named recipes that train and combine them."""
