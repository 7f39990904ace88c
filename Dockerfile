# One image for every voxflow process: `voxflow serve`, `voxflow worker`, `voxflow agent`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY plugins ./plugins
COPY schemas ./schemas
RUN pip install .
COPY flows ./flows
# Checked at build time: an image never ships flows that do not validate.
RUN voxflow validate flows/

RUN useradd --create-home voxflow && mkdir -p /app/.voxflow && chown voxflow /app/.voxflow
USER voxflow
EXPOSE 8080
ENTRYPOINT ["voxflow"]
CMD ["serve"]
