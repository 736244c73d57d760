"""Pure complaint workflow: the state machine, deadlines and the working-day calendar.

Modules: ``lifecycle`` (statuses, actions, roles, TRANSITIONS), ``calendar`` (working days,
local dates), ``holidays`` (packaged Indonesian holiday data), ``deadlines`` (policy and
overdue checks). Nothing here touches the network, the database or the clock; the only
I/O is reading the packaged holiday data file. No imports from store, services,
federation or cli.
"""
