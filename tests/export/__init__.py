"""Export tests: OTLP through a real collector (rotel) to an in-test receiver."""
