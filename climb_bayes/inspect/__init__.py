"""Stage 4, looking at the evidence: the report (its inputs, sections and page) and the figures it
shares with the notebook."""
