"""The pipeline's stages as plain functions: each reads its inputs from the LIGHTLY location,
writes its output under a content-addressed key there, and returns a small, picklable summary.

No Prefect here: ``thresher.tasks`` wraps each stage as a cached task and ``thresher.flows``
composes them. Every stage can run alone given its upstream summary.
"""
