"""Clinical protocols as data: one YAML file per treatment site."""
