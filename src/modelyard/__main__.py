"""Allow ``python -m modelyard``."""

from modelyard.cli.main import main

main()
