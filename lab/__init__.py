"""edgebill lab package."""
