"""Standard transparency-log interfaces over HTTP: C2SP tlog-tiles and tlog-witness.

`tiles` is pure (tile coordinates, paths, which persisted tree nodes a tile holds, entry
bundles); `http` serves them from a running node (`transparency.listen`); `witness_http`
answers tlog-witness add-checkpoint requests for the logs this node witnesses. Import the
modules themselves: this package imports nothing, so the pure part stays free of HTTP.
"""
