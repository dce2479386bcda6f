"""What is monitored and who may touch it: models, their versions and schemas, reference datasets,
API keys and dashboard sessions."""
