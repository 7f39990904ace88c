"""``voxflow dev``: the whole phone system on one machine (``stack``), with its voice agent."""
