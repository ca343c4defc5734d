"""Getting images in: walking folders, fetching URLs, decoding, and the indexer."""
