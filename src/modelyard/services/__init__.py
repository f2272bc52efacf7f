"""Use cases of the registry: the rules live here, below HTTP and above the stores."""
