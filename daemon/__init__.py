"""edgebill daemon package."""
