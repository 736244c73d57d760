"""Keys, signatures with domain separation, and TLS certificates. Pure: no I/O beyond the
key files a caller asks to read or write."""
