FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY monitor ./monitor
COPY alerts ./alerts
COPY dashboards ./dashboards
COPY migrations ./migrations
# the SDK package: the API, the scheduler and the deliverer import monitor_client
COPY client ./client
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["monitor", "serve", "--host", "0.0.0.0", "--port", "8000"]
