"""The package version, in a leaf module: what records and ``--version`` state, importable from any layer."""

__version__ = "0.1.0"
