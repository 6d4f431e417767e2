"""``python -m soak`` (or ``make soak``): mixed traffic at a fixed rate against a real
``tessera serve`` for a set time, reporting errors by status, latency percentiles and the
server's memory at the start and the end. README.md ("Soak test") has the knobs."""
