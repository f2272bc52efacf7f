"""Registry metadata (repositories, blob links, uploads, manifests, tags) behind small protocols."""
