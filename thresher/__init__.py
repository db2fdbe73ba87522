"""thresher: self-hosted data curation for machine learning.

Point it at a folder or bucket of images; it removes corrupt files and exact duplicates,
embeds the rest, selects the N samples most worth labeling and writes a report.
"""

__version__ = "0.1.0"
