"""lapor-node: the node a government unit runs to take part in SP4N-LAPOR!.

Nodes form a tree (national -> province -> regency/city -> agency) and exchange signed
complaint referrals over mutual-TLS gRPC. Every node keeps an append-only, RFC 6962
ledger of its handovers and resolutions that an auditor can verify without trusting it.
"""

__version__ = "0.1.0"
