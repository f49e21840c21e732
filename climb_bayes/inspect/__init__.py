"""Stage 4, looking at the evidence: the figures of the report and the notebook."""
