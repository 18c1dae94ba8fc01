"""The HTTP transport under both the DiracX backend and the downloads: the shared client
factory, TLS settings and header parsing.
"""
