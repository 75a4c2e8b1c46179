"""restdemo: a tiny REST service that says which container answered and which version runs."""

__version__ = "0.1.0"
