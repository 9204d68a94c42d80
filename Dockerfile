# The OpenGym worker image: one image, one component per container (`opengym worker <component>`).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY agents ./agents
COPY topics ./topics
COPY monitoring ./monitoring
COPY schemas ./schemas
RUN pip install --no-cache-dir .
ENV OPENGYM_METRICS_ADDR=0.0.0.0 \
    OPENGYM_STORE=rocksdict
ENTRYPOINT ["opengym"]
