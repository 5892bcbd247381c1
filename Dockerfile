# Docker Space (Hugging Face: `sdk: docker`, `app_port: 8501`) or any container host: the genmodels app on CPU.
FROM python:3.11-slim

# Spaces run the container as uid 1000; a home of its own keeps pip and hub caches writable.
RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user PATH=/home/user/.local/bin:$PATH PYTHONUNBUFFERED=1 \
    HF_HOME=/home/user/.cache/huggingface GENMODELS_WEIGHTS=/home/user/app/weights
WORKDIR /home/user/app

# CPU wheels of the pinned torch/torchvision first (the default index would pull ~2 GB of CUDA libraries),
# then the rest of the pins; pip keeps the already-installed torch because the versions match.
COPY --chown=user requirements.txt .
RUN pip install --no-cache-dir --user \
        --index-url https://download.pytorch.org/whl/cpu \
        "$(grep '^torch==' requirements.txt)" "$(grep '^torchvision==' requirements.txt)" \
 && pip install --no-cache-dir --user -r requirements.txt

COPY --chown=user . .

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"

# A Space shows the app inside an iframe on another origin: the XSRF cookie is blocked there, so uploads
# would fail with 403 unless XSRF protection (and with it the CORS check) is off.
CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0", \
     "--server.enableXsrfProtection=false", "--server.enableCORS=false"]
