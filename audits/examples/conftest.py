# The audit files in this folder are documented examples for models that are not installed here
# (a hub model, an OpenAI-compatible server). Copy one into audits/ and edit it to run it.
collect_ignore_glob = ["*.sce.toml"]
