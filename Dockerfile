# The OpenGym worker image: one image, one component per container (`opengym worker <component>`).
# The first stage builds the wheel; the second installs only that wheel, so a container runs what
# `pip install opengym_streams-*.whl` gives, the install tests/integration/test_installed_wheel.py runs.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
COPY --from=wheel /dist/ /opt/dist/
# OPENGYM_HOME holds each worker's tables (its Faust data dir); /targets is where the init job writes
# Prometheus' targets. Both belong to the image's user, so a fresh named volume mounted there gets that owner.
RUN pip install --no-cache-dir /opt/dist/*.whl \
    && rm -rf /opt/dist \
    && groupadd --gid 10001 opengym \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/opengym opengym \
    && mkdir -p /var/lib/opengym /targets \
    && chown 10001:10001 /var/lib/opengym /targets
ENV OPENGYM_HOME=/var/lib/opengym \
    OPENGYM_METRICS_ADDR=0.0.0.0 \
    OPENGYM_STORE=rocksdict
USER 10001
WORKDIR /var/lib/opengym
ENTRYPOINT ["opengym"]
