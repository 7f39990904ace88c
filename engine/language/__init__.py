"""The flow language: a YAML file through ``load`` → ``validate`` → ``compile``.

``load`` (YAML text → data and a source map), ``validate`` (the schema composed from the
installed node plugins, then the checks that need the whole flow), ``compile`` (→ an immutable,
content-hashed ``FlowGraph``). ``project`` runs all three over a folder of flow and trigger files;
it is where commands and the server start.
"""
