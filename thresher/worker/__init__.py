"""``thresher worker start``: registers, heartbeats, takes scheduled runs and runs them."""
