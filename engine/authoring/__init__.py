"""Tools for people writing flows, over compiled flows: diagrams, the node reference, diffs."""
