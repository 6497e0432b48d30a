"""Submission out: the file and its record, the Kaggle client, submit, the ledger."""
