# topicstance: the gRPC service with its default model, trained from the committed corpus.
#
#   docker build -t topicstance .
#   docker run -d -p 50051:50051 -p 9090:9090 topicstance
#
# Build stage: the runtime venv (exact pins), and the default model, trained with the
# training-only packages put aside in /opt/trainlib. Only the venv and the model ship.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY requirements/ requirements/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --quiet -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY topicstance/ topicstance/
COPY service/ service/
COPY client/ client/
COPY training/ training/
RUN /opt/venv/bin/pip install --quiet --no-deps . \
    && /opt/venv/bin/pip install --quiet --no-deps --target /opt/trainlib -r requirements/train.txt \
    && PYTHONPATH=/opt/trainlib /opt/venv/bin/python training/train.py \
        --data training/data --out /models/default --no-report \
    && find /opt/venv -depth -type d -name tests -exec rm -rf {} + \
    && /opt/venv/bin/pip uninstall --quiet --yes pip setuptools

# Runtime stage: the venv, the model, a non-root user; nothing else.
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TOPICSTANCE_HOST=0.0.0.0 \
    TOPICSTANCE_PORT=50051 \
    TOPICSTANCE_METRICS_PORT=9090 \
    TOPICSTANCE_MODEL=/models/default \
    TOPICSTANCE_GRACE_SECONDS=20 \
    TOPICSTANCE_DRAIN_DELAY_SECONDS=5
# A container listens on all interfaces, so plaintext must be allowed explicitly:
# keep the port on a private network, or set TOPICSTANCE_TLS_CERT/KEY (and unset this).
ENV TOPICSTANCE_INSECURE=true

RUN groupadd --system --gid 10001 topicstance \
    && useradd --system --uid 10001 --gid topicstance --no-create-home --shell /usr/sbin/nologin topicstance
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=10001:10001 /models /models

USER 10001:10001
EXPOSE 50051 9090
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/venv/bin/python", "-m", "service.healthcheck"]
ENTRYPOINT ["/opt/venv/bin/topicstance-server"]
