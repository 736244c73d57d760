"""gRPC edge: the federation servicer, the parent dialer, link sessions and the status
translator. Everything here calls services/, never store/."""
