# genbench in a container: train, evaluate and report the grid on any GPU box (or CPU).
#
#   docker build -t genbench .                                   # CUDA-capable (default)
#   docker build -t genbench:cpu --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu .
#   docker run --gpus all --rm -u "$(id -u):$(id -g)" -v "$PWD":/work --entrypoint dvc genbench repro
#
# The CUDA runtime comes with PyTorch's wheels (the nvidia-* packages pinned in requirements.lock), so the
# default image only needs the host's NVIDIA driver (NVIDIA Container Toolkit, `--gpus all`); a CUDA base
# image would ship a second copy of the same libraries. The CPU variant installs PyTorch's CPU wheels.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# PyTorch wheel index: PyPI's default wheels bundle CUDA; https://download.pytorch.org/whl/cpu for CPU-only.
ARG TORCH_INDEX_URL=https://pypi.org/simple
ARG UID=1000

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# git: DVC reads the mounted repository's history; the mount is owned by the host user, hence safe.directory.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.* \
    && rm -rf /var/lib/apt/lists/* \
    && git config --system --add safe.directory '*' \
    && python -m venv /opt/venv

WORKDIR /opt/genbench
# Dependencies first (cached across code changes), pinned by the project's constraints file.
COPY requirements.lock pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.in \
    && pip install --extra-index-url "${TORCH_INDEX_URL}" -c requirements.lock -r requirements.in

# Fashion-MNIST baked in where `prepare` looks first (the Debian package's path); torchvision checks the MD5s.
RUN python -c "from torchvision.datasets import FashionMNIST; FashionMNIST('/tmp/fm', download=True)" \
    && mkdir -p /usr/share/datasets/fashion-mnist \
    && mv /tmp/fm/FashionMNIST/raw/*.gz /usr/share/datasets/fashion-mnist/ \
    && rm -rf /tmp/fm

COPY README.md ./
COPY pipeline ./pipeline
COPY stages ./stages
RUN pip install --no-deps . \
    && useradd --create-home --uid "${UID}" genbench

# The repository (params.yaml, dvc.yaml, mlflow.db, outputs) is mounted here; its code shadows the installed copy.
WORKDIR /work
USER ${UID}
ENTRYPOINT ["python", "-m", "stages"]
CMD ["--help"]
