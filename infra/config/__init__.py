"""Settings: declared once, validated into one typed object, passed to every component."""
