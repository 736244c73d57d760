"""The ledger for off-the-shelf transparency-log clients: C2SP tlog-tiles.

`tiles` is pure (tile coordinates, paths, which persisted tree nodes a tile holds, entry
bundles); `http` serves them from a running node (`transparency.listen`). Import the
modules themselves: this package imports nothing, so the pure part stays free of HTTP.
"""
