"""Checks that read every input file once: decoding (corruption) and content hashes."""
