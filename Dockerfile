# One image for the three app services of docker-compose.yml: web (gunicorn, the default
# command), worker and beat (Celery). Everything the app writes goes to the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# WeasyPrint renders the PDF record with Pango (text layout) and its fonts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
        libharfbuzz-subset0 fonts-dejavu-core fonts-liberation2 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that a code change does not reinstall
# them: empty packages stand in for the code until it is copied.
COPY pyproject.toml README.md ./
RUN mkdir readiness signoff \
    && touch readiness/__init__.py signoff/__init__.py \
    && pip install . \
    && pip uninstall -y readiness \
    && rm -rf readiness signoff build readiness.egg-info

COPY . .
RUN pip install --no-deps . && rm -rf build readiness.egg-info

# PYTHONPATH: gunicorn, celery and manage.py all import the code from /app, whose BASE_DIR
# holds templates/ and static/ (the installed copy in site-packages has neither).
# STATIC_ROOT: collected files belong to the image, not to the /data volume, where an older
# copy would outlive an upgrade and no longer match the code's manifest.
# MALLOC_ARENA_MAX: glibc gives each thread its own malloc arena (up to eight per core) and
# keeps their freed pages; the worker's eight threads and their probes' threads then hold
# far more than they use. Two arenas, as docker-compose.yml and `manage.py serve` give the
# worker, for whichever way the image is run; web and beat allocate under the GIL anyway.
ENV PYTHONPATH=/app \
    DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles \
    WEB_CONCURRENCY=2 \
    MALLOC_ARENA_MAX=2

# Settings need a secret key and a writable DATA_DIR to load; these two live for this step
# only and never reach the running containers.
RUN DATA_DIR=/tmp/collectstatic-data SECRET_KEY=collectstatic-only-not-used-at-runtime \
    python manage.py collectstatic --noinput -v0 \
    && rm -rf /tmp/collectstatic-data

# /data is created and owned before VOLUME so a new named volume starts out writable by the
# app user. The user gets a writable home: gunicorn keeps its control socket there.
RUN groupadd --system --gid 10001 readiness \
    && useradd --system --uid 10001 --gid readiness --create-home --home-dir /home/readiness \
        --shell /usr/sbin/nologin readiness \
    && mkdir -p /data \
    && chown readiness:readiness /data
USER readiness
VOLUME ["/data"]

EXPOSE 8000
# gunicorn reads its worker count from WEB_CONCURRENCY; threads and hooks from the config
# module (readiness/project/gunicorn_conf.py), shared with compose and `manage.py serve`.
CMD ["gunicorn", "readiness.project.wsgi", "--bind", "0.0.0.0:8000", "--config", "python:readiness.project.gunicorn_conf", "--access-logfile", "-"]
