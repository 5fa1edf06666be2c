"""Audio decoding, the manifest contract, synthetic datasets and WebDataset shard I/O."""
