"""Tables: rows read once, checked once, normalised once; in memory or in a float32 cache on disk."""
