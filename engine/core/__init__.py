"""What every stage shares: the error users see, "did you mean", printing for people, traces.

Nothing here knows what a flow is; every other package may import it.
"""
