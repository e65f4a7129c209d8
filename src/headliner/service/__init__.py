"""The decision service: FastAPI app, settings, domain layer and routes.

Build the app with :func:`headliner.service.app.create_app`; the domain layer
shared with the CLI is :class:`headliner.service.experiments.ExperimentService`.
"""
