"""The local LiveKit test bed: a real LiveKit server on loopback, and a caller in its rooms."""
