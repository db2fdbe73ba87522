"""Storage: locations over fsspec, the ``.lightly/`` file formats, embeddings CSVs."""
