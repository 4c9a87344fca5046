FROM python:3.11-slim-bookworm
# WeasyPrint needs Pango; the PDF fonts ship with the project.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN pip install --no-cache-dir --no-deps -e . && useradd --system voix
USER voix
ENV VOIX_VAR_DIR=/tmp/voix
EXPOSE 8000
