# Convenience targets; each one calls a script, the logic lives in kaggle_digits/.
PYTHON ?= python3
VENV_PY := .venv/bin/python
BUNDLE ?= ../shared/kaggle/digit-recognizer.zip

.PHONY: run test test-fast fetch fetch-zip train ensemble help

help:
	@echo "make run        install into .venv, get data (or use the sample), train improved_cnn"
	@echo "make test       install into .venv and run the test suite (what CI runs)"
	@echo "make test-fast  the suite without the tests marked slow: the edit loop"
	@echo "make fetch      download the competition data with the kaggle client"
	@echo "make fetch-zip  unpack a hand-downloaded bundle (BUNDLE=$(BUNDLE))"
	@echo "make train      train improved_cnn with its defaults"
	@echo "make ensemble   train the bagged ensemble recipe (2 x 5-fold) and write its submission"

run:
	$(PYTHON) scripts/quickstart.py

test:
	$(PYTHON) scripts/quickstart.py --test

test-fast:
	$(PYTHON) scripts/quickstart.py --test -- -m "not slow" -q

fetch:
	$(VENV_PY) scripts/fetch.py

fetch-zip:
	$(VENV_PY) scripts/fetch.py --from-zip $(BUNDLE)

train:
	$(VENV_PY) scripts/train.py --arch improved_cnn

ensemble:
	$(VENV_PY) scripts/ensemble.py --recipe bagged
