"""Stage 1, the pilots' evidence: the pilot table (the one file format every later stage
reads), its validation, the converters of published runs, and the designs that plan pilots."""
