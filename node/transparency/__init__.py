"""Standard transparency-log interfaces over HTTP (C2SP tlog-tiles, tlog-witness)."""
