"""The platform's service layer: users, tokens, datasets, datasources, workers, runs.

Plain Python over SQLAlchemy, no HTTP: ``thresher.server`` is a thin layer over these modules,
and the tests call them directly. Every function that touches an object takes the calling
user and checks access itself (:mod:`thresher.platform.access`: ``dataset_for`` for anything in
a dataset, ``require_owner`` for a user's own workers and configs), so no route can forget it.
Prefect is never imported here: the worker runs the flow.
"""
