"""edgebill policies package."""
