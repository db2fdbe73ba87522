"""The HTTP layer over ``thresher.platform``: Lightly's ``/v1`` routes and the worker routes.

Thin: every rule lives in the service layer.
"""
