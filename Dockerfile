FROM python:3.11-slim-bookworm
# WeasyPrint needs Pango; the PDF fonts ship with the project. pg_dump/pg_restore 15 for
# `voix backup` and `voix restore`: the major version of the compose file's PostgreSQL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
       postgresql-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# The code belongs to root and cannot be changed by the app; the app runs as `voix`, which owns
# only its own directory (home and VOIX_VAR_DIR) and /backups, where a volume keeps the dumps.
# The bytecode is compiled here: `voix` cannot write it next to root's code, and compiling the
# project at every start cost half a second of it.
RUN pip install --no-cache-dir --no-deps -e . \
    && python -m compileall -q /app \
    && useradd --system --create-home --home-dir /var/lib/voix voix \
    && mkdir /backups && chown voix /backups
USER voix
ENV VOIX_VAR_DIR=/var/lib/voix
EXPOSE 8000
