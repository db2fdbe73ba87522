"""The platform's service layer: users, tokens, datasets, datasources, workers, runs.

Plain Python over SQLAlchemy, no HTTP: ``thresher.server`` is a thin layer over these modules,
and the tests call them directly. Every function that touches a user's object takes the
calling user and checks ownership itself (:func:`thresher.platform.access.require_owner`), so
no route can forget it. Prefect is never imported here: the worker runs the flow.
"""
