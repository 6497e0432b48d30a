"""The command-line programs: ``scripts/<name>.py`` and the ``kaggle-digits-<name>`` console
entry points both call ``kaggle_digits.cli.<name>.main``."""
