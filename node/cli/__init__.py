"""The `lapor-node` command: thin over the library; it parses, calls, prints."""
