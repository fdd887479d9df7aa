# `make demo` and `make test` each create .venv/ when it is missing, and install the project
# with the extra they need: demo (the embedded AWS stack) or test (demo's packages and the
# test tools). Production installs (the GPU image) take neither.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv

.PHONY: demo test clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-%: setup.cfg pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -e '.[$*]'
	touch $@

demo: $(VENV)/.installed-demo
	$(VENV)/bin/videoscan demo

test: $(VENV)/.installed-test
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) videoscan-demo .pytest_cache
