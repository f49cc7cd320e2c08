# Quanta's application image: one image for every process of the Procfile. docker-compose.yml
# chooses the process with `python bin/procfile exec NAME` (web, worker-*, beat, release).
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    QUANTA_VAR_DIR=/app/var \
    PORT=8000

WORKDIR /app

RUN groupadd --system --gid 10001 quanta \
    && useradd --system --uid 10001 --gid quanta --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin quanta

# The dependencies first, in their own layer, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .

# Editable, so the settings' BASE_DIR stays /app, next to templates/ and static/. The static files
# are collected with throwaway production settings that exist for this build step only.
RUN pip install --no-deps -e . \
    && DJANGO_ENV=production \
       SECRET_KEY=collectstatic-only-this-is-not-the-key-of-any-deployment \
       ALLOWED_HOSTS=build.invalid \
       python manage.py collectstatic --noinput \
    && mkdir -p /app/var/media /app/var/mail \
    && chown -R quanta:quanta /app/var

# The code stays owned by root and read-only to the app; only var/ (QUANTA_VAR_DIR) is writable.
USER quanta
EXPOSE 8000
CMD ["python", "bin/procfile", "exec", "web"]
