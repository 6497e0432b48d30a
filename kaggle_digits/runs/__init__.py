"""The run directory and what guards it: file names, atomic writes, locks."""
