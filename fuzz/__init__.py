"""Hypothesis harnesses for every parser of bytes from outside (issue 21.10, 17.7).

Each harness module defines HARNESS: a strategy of inputs and a target that feeds one input
to the node's own parsing and handling code. An input may be refused with any error of the
project's tree (node.errors.NodeError): that is the documented answer to bad input. Any
other exception is a crash. `python -m fuzz.run --inputs N` runs every harness and
reports, per harness, the inputs tried, how many were refused, and the crashes.
"""
